"""
Segment your own images: clothing parsing on CCP photos, end to end
====================================================================

The package's promise — *bring unlabelled photos and a handful of masks, get a segmenter* — on
real street photos (Clothing Co-Parsing, Yang et al., CVPR 2014; ``../shared/data/ccp_clothing``):

1. train a small DDPM on the ``unlabeled`` + ``labeled_pool`` photos (never ``test``) with the
   ``sklearn-ddpm train-ddpm`` command;
2. list its decoder blocks (``sklearn-ddpm blocks``);
3. choose blocks and timesteps with a ``GridSearchCV`` on labelled images only;
4. fit the pipeline on n = 10, 20, 50 labelled images (coarse 11-class masks), then the fine
   59-class task;
5. evaluate on ``test``: mIoU, pixel accuracy and a per-class IoU table with the class names;
6. write overlays (labels, ensemble uncertainty, legend).

Every step prints its wall time; all figures go to ``WORK_DIR/tutorial_ccp.json``.

Run it::

    python examples/tutorial_ccp.py --quick        # 5-10 min on a CPU: 10 DDPM steps, small fits
    python examples/tutorial_ccp.py                # full: hours on a CPU (DDPM training dominates)
    python examples/tutorial_ccp.py --model DIR    # skip step 1, use an already trained DDPM

``--quick`` trains the DDPM for only a few steps (its features are then close to a random UNet's),
fits small ensembles and scores the first 10 test images: it checks the journey, not the accuracy.
The DDPM step resumes from its checkpoints, so an interrupted full run continues where it stopped.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import REPO_ROOT as REPO, shared_data, write_record  # noqa: E402

DATA = shared_data("ccp_clothing")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small settings: checks the journey in 5-10 min on a CPU")
    p.add_argument("--data", type=Path, default=DATA, help="CCP folder (default: ../shared/data/ccp_clothing)")
    p.add_argument("--work-dir", type=Path, default=REPO / ".cache" / "ccp_tutorial",
                   help="DDPM run, overlays and results (default: .cache/ccp_tutorial)")
    p.add_argument("--model", type=Path, default=None, help="an already trained DDPM folder: skips step 1")
    p.add_argument("--ddpm-steps", type=int, default=None,
                   help="DDPM optimizer steps (default: 20000; 10 with --quick)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, best on a busy machine)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--record", type=Path, default=None,
                   help="JSON record of the run's figures (default: WORK_DIR/tutorial_ccp.json)")
    return p.parse_args(argv)


class Timer:
    """Wall time of each step, printed and kept for the results file."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, name):
        timer = self

        class _Step:
            def __enter__(self):
                print(f"\n== {name}", flush=True)
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[name] = round(time.perf_counter() - self.start, 1)
                print(f"   ({timer.seconds[name]:.0f} s)", flush=True)

        return _Step()


def cli(*args):
    """Run ``sklearn-ddpm ARGS`` as a user would in a shell (same interpreter as this script)."""
    command = [sys.executable, "-m", "sklearn_ddpm.cli", *map(str, args)]
    print("   $ sklearn-ddpm " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def iou_table(ious, class_names, train_pixels):
    """Per-class IoU lines: name, IoU (%, '-' when the class is in neither truth nor prediction), training pixels.

    Classes absent from the training masks, the test masks and the predictions are left out.
    """
    lines = [f"   {'class':<15}{'IoU %':>7}{'train px':>10}"]
    for k, name in enumerate(class_names):
        if np.isnan(ious[k]) and not train_pixels.get(k, 0):
            continue
        iou = "-" if np.isnan(ious[k]) else f"{100 * ious[k]:.1f}"
        lines.append(f"   {name:<15}{iou:>7}{train_pixels.get(k, 0):>10}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from sklearn.model_selection import GridSearchCV, KFold

    from sklearn_ddpm import ActivationCache, DDPMFeatureTransformer, MLPEnsembleClassifier, make_segmenter
    from sklearn_ddpm.metrics import mean_iou, per_class_iou
    from sklearn_ddpm.backbone import list_decoder_blocks, load_backbone
    from sklearn_ddpm.datasets import load_ccp_clothing
    from sklearn_ddpm.plotting import overlay

    if not (args.data / "splits.json").is_file():
        sys.exit(f"CCP data not found at {args.data} (pass --data).")
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    timer, results = Timer(), {"quick": quick, "device": args.device, "threads": args.threads}
    started = time.perf_counter()
    # CPU budget of the pixel classifiers: a pixel cap per image and, with --quick, fewer members.
    # standardize: the blocks' activations differ in scale; standardized, many blocks can be used.
    mlp = {"n_estimators": 3 if quick else 10, "max_pixels_per_image": 1000 if quick else 5000,
           "batch_size": 256, "lr": 1e-3 * (256 / 64) ** 0.5, "standardize": True, "device": args.device}
    n_test = 10 if quick else None

    # 1. DDPM on the unlabelled + labelled-pool photos (never the test split) -------------------
    splits = json.loads((args.data / "splits.json").read_text())
    if args.model is None:
        with timer("1. train a DDPM (train-ddpm)"):
            image_list = work / "ddpm_images.txt"
            image_list.write_text("\n".join(splits["unlabeled"] + splits["labeled_pool"]) + "\n")
            model = work / "ddpm"
            steps = args.ddpm_steps or (10 if quick else 20000)
            cli("train-ddpm", args.data / "images", model, "--image-list", image_list, "--preset", "64",
                "--max-steps", steps, "--threads", args.threads, "--device", args.device,
                "--checkpoint-every", min(250, steps))
    else:
        model = args.model
    results["model"] = str(model)

    # 2. Its decoder blocks ---------------------------------------------------------------------
    with timer("2. list the decoder blocks (blocks)"):
        cli("blocks", "--model", model)

    pool = load_ccp_clothing(args.data, split="labeled_pool", coarse=True)
    test = load_ccp_clothing(args.data, split="test", coarse=True, n=n_test)
    names = pool.class_names

    # 3. Blocks and timesteps, chosen on labelled images only -------------------------------------
    with timer("3. choose blocks and steps (GridSearchCV on labeled_pool)"):
        n_search = 4 if quick else 10
        every_block = tuple(b.index for b in list_decoder_blocks(load_backbone(model)))
        grid = {"features__blocks": [(3, 6, 9), every_block] if quick else [(2, 5, 8), (3, 6, 9), (5, 8, 11), every_block],
                "features__steps": [(50, 150, 250)] if quick else [(50, 150, 250), (10, 50, 150)]}
        # One activation cache for all candidates and folds: the UNet runs once per image and step.
        segmenter = make_segmenter(model, memory=ActivationCache(), device=args.device)
        segmenter.set_params(**{f"clf__{k}": v for k, v in {**mlp, "n_estimators": 2 if quick else 3}.items()})
        search = GridSearchCV(segmenter, grid, cv=KFold(2), refit=False, error_score="raise")
        search.fit(pool.images[:n_search], pool.masks[:n_search])
        for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
            print(f"   blocks {params['features__blocks']}, steps {params['features__steps']}: "
                  f"mIoU {100 * score:.1f}")
        blocks, steps = search.best_params_["features__blocks"], search.best_params_["features__steps"]
        print(f"   chosen: blocks {blocks}, steps {steps}")
        results["grid"] = [{"blocks": p["features__blocks"], "steps": p["features__steps"], "miou": s}
                           for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])]
        results["chosen"] = {"blocks": blocks, "steps": steps}

    # 4-5. Fit on n labelled images, score on test ------------------------------------------------
    # The test features are computed once and reused by every fitted classifier.
    features = DDPMFeatureTransformer(model, blocks=blocks, steps=steps, device=args.device).fit()
    with timer("   test-split features"):
        test_features = features.transform(test.images)
        pool_features = features.transform(pool.images)

    def fit_and_score(task, masks_train, masks_test, n, class_names, **clf_params):
        # n_classes fixes the label set (and, from 30 classes on, the wider reference MLP) even when
        # the n training images miss some classes.
        clf = MLPEnsembleClassifier(random_state=0, n_classes=len(class_names), **{**mlp, **clf_params})
        run = f"{task}, n = {n}" + "".join(f", {k}={v}" for k, v in clf_params.items())
        with timer(f"4. fit, {run}"):
            clf.fit(pool_features[:n], masks_train[:n])
        with timer(f"5. predict + score on {len(masks_test)} test images, {run}"):
            predictions = clf.predict(test_features)
            ious = per_class_iou(masks_test, predictions, n_classes=len(class_names))
        train_pixels = dict(zip(*np.unique(np.concatenate([m.ravel() for m in masks_train[:n]]), return_counts=True)))
        accuracy = np.mean(np.concatenate([(np.asarray(p) == t).ravel() for p, t in zip(predictions, masks_test)]))
        never_trained = [class_names[k] for k in range(len(class_names))
                         if k not in train_pixels and np.isfinite(ious[k])]
        print(f"   mIoU {100 * mean_iou(ious):.1f}  pixel accuracy {100 * accuracy:.1f}  "
              f"({len(train_pixels)} of {len(class_names)} classes in the training masks; "
              f"hidden layers {clf.net_.module__hidden})")
        if never_trained:
            print(f"   classes in the test masks but never in training (IoU 0, counted in the mean): {never_trained}")
        results.setdefault("runs", []).append({
            "task": task, "n_labeled": n, **{k: str(v) for k, v in clf_params.items()},
            "miou": float(mean_iou(ious)), "pixel_accuracy": float(accuracy),
            "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, ious)},
            "never_trained": never_trained, "n_training_pixels": int(clf.n_training_pixels_)})
        return clf, ious, train_pixels, predictions

    for n in (10,) if quick else (10, 20, 50):
        clf, ious, train_pixels, predictions = fit_and_score("coarse", pool.masks, test.masks, n, names)
    print(iou_table(ious, names, train_pixels))
    # The paper's MLPs see the raw activations: how much does standardizing them bring?
    fit_and_score("coarse", pool.masks, test.masks, 10 if quick else 20, names, standardize=False)

    # The fine task: 59 classes, many rare or absent from the labelled images.
    pool_fine = load_ccp_clothing(args.data, split="labeled_pool", coarse=False)
    test_fine = load_ccp_clothing(args.data, split="test", coarse=False, n=n_test)
    n_fine = 10 if quick else 50
    _, fine_ious, fine_pixels, _ = fit_and_score("fine", pool_fine.masks, test_fine.masks, n_fine,
                                                 pool_fine.class_names)
    print(iou_table(fine_ious, pool_fine.class_names, fine_pixels))
    # Class weights: do rare classes gain more than frequent ones lose?
    fit_and_score("fine", pool_fine.masks, test_fine.masks, n_fine, pool_fine.class_names,
                  class_weight="balanced")

    # 6. Overlays of the last coarse model ----------------------------------------------------------
    with timer("6. overlays"):
        from PIL import Image

        out = work / "overlays"
        out.mkdir(exist_ok=True)
        shown = list(range(min(4, len(test.images))))
        uncertainty = clf.predict_uncertainty(test_features[shown])
        for i in shown:
            picture = overlay(test.images[i], predictions[i], uncertainty=uncertainty[i], class_names=names)
            Image.fromarray(picture).save(out / f"{test.names[i]}.png")
        print(f"   wrote {len(shown)} overlays to {out}")

    results["seconds"] = timer.seconds
    results["seconds_total"] = round(time.perf_counter() - started, 1)
    write_record(args.record or work / "tutorial_ccp.json", "tutorial_ccp.py", results)


if __name__ == "__main__":
    main()
