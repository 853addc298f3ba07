"""The pixel-MLP ensemble's training speed levers on this CPU, and where the default CLI fit's time goes (issue 26).

Data: the first ``n`` (20) images of Weizmann's ``labeled_pool`` (nothing of the test split is
looked at), the bundled horse DDPM and the package's default features (``make_segmenter()``:
steps 50/150/250, default blocks). The features are extracted ONCE (seed 0) and every lever
fits only the classifier (``MLPEnsembleClassifier`` with the package defaults: 500 labelled pixels
per class and image, batch 64, Adam, the reference's early stop, guided-filter refinement).

Levers (``LEVERS``), against the baseline "fp32 b64" (the default):

- ``autocast_dtype="bfloat16"``: the members' forward and backward under
  ``torch.autocast("cpu", bfloat16)`` (this CPU has AVX512-BF16); the gathered training features
  are then stored as bfloat16 too (half the memory, the same numbers: lever 3);
- batch 256 and 1024 under the package's batch rule (``sklearn_ddpm/ensemble/_schedule.py``:
  lr ``1e-3 * sqrt(B / 64)``, patience kept in pixels, 4 epochs before the stop), and batch 1024
  with ghost batch normalization over slices of 64 (``module__ghost_batch=64``).

Speed: ``--rounds`` rounds of one fit per lever on all ``n`` images, interleaved (A, B, C, ..., A,
B, C, ...) so that the machine's load affects all alike; wall and CPU seconds (process time, all
threads) and the 1-minute load average of every fit. Accuracy: ``GroupKFold(folds)`` (one group
per image) cross-validation mIoU, the classifier fitted on the training folds' cached features and
scored (``clf.score``: the pipeline's mIoU) on the held-out images, for ``--seeds`` MLP seeds; the
levers are interleaved within each (seed, fold) as well, and those fits' times are recorded too.

:data:`RULE` (fixed before the run) decides whether a lever becomes the default. The record also
holds the phase breakdown of ``sklearn-ddpm fit`` with every default on the same ``n`` horses
(``--quiet``), measured in one child process running the CLI's own ``main`` with timers wrapped
around the functions it calls (the CLI prints no timings): ``phases`` with the CLI's default threads
(torch's: 2 here), ``phases_threads_N`` with ``--threads N``.

Writes ``benchmarks/results/ensemble_speed.json`` (resumable: rerun to continue after
``--max-minutes``).
"""

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA_DIR, REPO_ROOT, RESULTS_DIR, machine, parser, torch_threads, write_json

BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"  # make_segmenter(model=None) loads it

#: label -> classifier parameters; the first is the baseline (the package default)
LEVERS = {
    "fp32 b64": {},
    "bf16 b64": {"autocast_dtype": "bfloat16"},
    "fp32 b256": {"batch_size": 256},
    "fp32 b1024": {"batch_size": 1024},
    "fp32 b1024 ghost64": {"batch_size": 1024, "module__ghost_batch": 64},
}
BASELINE = "fp32 b64"

RULE = ("fixed before the run: a lever becomes the default only if (a) its CV mIoU (mean over seeds of the mean over "
        "folds) is at least the baseline's minus one standard error of the baseline (sample std over folds of the "
        "baseline's per-fold mIoU, averaged over seeds, / sqrt(folds)) AND (b) it is at least 1.3x faster in CPU "
        "seconds than the baseline in the same run (ratio of the medians over the interleaved timing rounds on all "
        "n images); if several pass, the one with the largest CPU speed-up. Otherwise it stays opt-in or is dropped. "
        "The test split is scored once, only if a default changes.")


def _load(split, n):
    from sklearn_ddpm.datasets._io import load_split_folder

    images, masks, _, _ = load_split_folder(DATA_DIR / "weizmann_horse", split, image_dir="images",
                                            mask_dir="masks", n=n, with_masks=True, dataset="Weizmann horse")
    return images, masks


def _timed_fit(clf, features, masks):
    """Fit ``clf``; its wall and CPU seconds, the load before, and what the fit did."""
    load = machine()["load_average_1min"]
    wall, cpu = time.perf_counter(), time.process_time()
    clf.fit(features, masks)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_seconds": wall, "cpu_seconds": cpu, "load_average_before": load,
            "epochs": len(clf.net_.history), "n_iter": int(clf.n_iter_), "n_training_pixels": int(clf.n_training_pixels_),
            "stop_epochs": [None if e is None else int(e) for e in clf.stop_epochs_]}


def _classifier(template, label, seed):
    from sklearn.base import clone

    return clone(template).set_params(random_state=seed, **LEVERS[label])


# -- the CLI's phases -------------------------------------------------------------------------------
def _phases_child(train_dir, model_path, threads):
    """Run ``sklearn-ddpm fit TRAIN/images TRAIN/masks -o MODEL --quiet`` in this process, timing its calls.

    Prints one JSON line: per phase its wall and CPU seconds (summed over calls) and call count.
    """
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    phases = {}

    def timer(name, function):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                entry = phases.setdefault(name, {"wall_seconds": 0.0, "cpu_seconds": 0.0, "calls": 0})
                entry["wall_seconds"] += time.perf_counter() - wall
                entry["cpu_seconds"] += time.process_time() - cpu
                entry["calls"] += 1
        return timed

    argv = ["fit", str(train_dir / "images"), str(train_dir / "masks"), "-o", str(model_path), "--quiet"]
    argv += ["--threads", str(threads)] if threads else []
    wall, cpu = time.perf_counter(), time.process_time()
    from sklearn_ddpm import cli

    cli.build_parser(for_argv=argv)  # imports the fit command's modules, as main does first
    phases["import (python, torch, diffusers, the package)"] = {
        "wall_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "calls": 1}
    import sklearn_ddpm.datasets._folders as folders
    from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
    from sklearn_ddpm._segment_cli import _commands
    from sklearn_ddpm.ensemble import _classifier, _net

    _commands._load_backbone = timer("load the backbone (CLI check)", _commands._load_backbone)
    folders.load_image_folder = timer("read images and masks", folders.load_image_folder)
    DDPMFeatureTransformer.fit = timer("features: fit (checks the settings; the backbone is passed loaded)",
                                       DDPMFeatureTransformer.fit)
    DDPMFeatureTransformer._transform = timer("features: UNet extraction (20 images x 3 steps)",
                                              DDPMFeatureTransformer._transform)
    MLPEnsembleClassifier.fit = timer("MLP fit (all of it)", MLPEnsembleClassifier.fit)
    _classifier.select_training_pixels = timer("  MLP fit: choose the training pixels",
                                               _classifier.select_training_pixels)
    _classifier.MemberPixelDataset = timer("  MLP fit: gather the training pixels' features",
                                           _classifier.MemberPixelDataset)
    _net.EnsembleNet.partial_fit = timer("  MLP fit: train the 10 members (skorch)", _net.EnsembleNet.partial_fit)
    _commands.save_segmenter = timer("save the model", _commands.save_segmenter)
    status = cli.main(argv)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = {"wall_seconds": time.perf_counter() - start_wall, "cpu_seconds": time.process_time() - start_cpu,
             "peak_rss_bytes": usage.ru_maxrss * 1024, "exit_status": status}
    print(json.dumps({"phases": phases, "total_after_interpreter_start": total}))


def _phases(args, root, splits):
    """The CLI default fit's phase breakdown, measured in a child process (:func:`_phases_child`)."""
    from default_fit import _copy_split

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _copy_split(splits["labeled_pool"][: args.n], root, tmp / "train", True)
        load = machine()["load_average_1min"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        command = [sys.executable, __file__, "--phases-child", str(tmp / "train"), str(tmp / "seg.skddpm")]
        command += ["--threads", str(args.threads)] if args.threads else []
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["child_process"] = {"wall_seconds": wall, "cpu_seconds": (after.ru_utime - before.ru_utime)
                               + (after.ru_stime - before.ru_stime), "load_average_before": load,
                               "load_average_after": machine()["load_average_1min"]}
    top = [v for k, v in result["phases"].items() if not k.startswith("  ")]
    result["not_in_a_phase_wall_seconds"] = result["total_after_interpreter_start"]["wall_seconds"] - sum(
        v["wall_seconds"] for v in top)
    result["command"] = "sklearn-ddpm fit IMAGES MASKS -o MODEL --quiet (every default), n labelled horses"
    result["torch_threads"] = args.threads or "torch's default (the CLI's without --threads)"
    return result


# -- the decision ---------------------------------------------------------------------------------
def _summary(payload, levers, seeds, folds):
    """Per lever: CV mIoU (per seed, mean, std over seeds), timing medians and ratios, and the rule's verdict."""
    cv = payload["cv"]
    timing = payload["timing"]
    out = {}
    for label in levers:
        per_seed = []
        per_fold = np.full((len(seeds), folds), np.nan)
        for i, seed in enumerate(seeds):
            for f in range(folds):
                row = cv.get(f"{label}|{seed}|{f}")
                if row is not None:
                    per_fold[i, f] = row["miou"]
            if not np.isnan(per_fold[i]).any():
                per_seed.append(float(per_fold[i].mean()))
        rows = [r for r in timing if r["lever"] == label]
        entry = {"params": LEVERS[label], "cv_miou_per_seed": per_seed,
                 "cv_miou": float(np.mean(per_seed)) if per_seed else None,
                 "cv_miou_std_over_seeds": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None,
                 "cv_miou_per_fold_mean_over_seeds": None if np.isnan(per_fold).any() else
                 per_fold.mean(0).tolist(),
                 "timing_rounds": len(rows)}
        if rows:
            for key in ("wall_seconds", "cpu_seconds", "epochs", "n_iter"):
                entry[f"median_{key}"] = float(np.median([r[key] for r in rows]))
            entry["training_features_bytes"] = rows[0]["training_features_bytes"]
        cv_rows = [r for k, r in cv.items() if k.startswith(label + "|")]
        if cv_rows:
            entry["cv_fit_median_cpu_seconds"] = float(np.median([r["cpu_seconds"] for r in cv_rows]))
        out[label] = entry
    base = out.get(BASELINE)
    complete = base and base["cv_miou_per_fold_mean_over_seeds"] is not None and base["timing_rounds"]
    if complete:
        folds_mean = np.asarray(base["cv_miou_per_fold_mean_over_seeds"])
        error = float(folds_mean.std(ddof=1) / np.sqrt(len(folds_mean)))
        passing = []
        for label, entry in out.items():
            if label == BASELINE or entry["cv_miou"] is None or not entry["timing_rounds"] or len(
                    entry["cv_miou_per_seed"]) < len(seeds):
                continue
            entry["cv_miou_minus_baseline"] = entry["cv_miou"] - base["cv_miou"]
            entry["cpu_speedup"] = base["median_cpu_seconds"] / entry["median_cpu_seconds"]
            entry["wall_speedup"] = base["median_wall_seconds"] / entry["median_wall_seconds"]
            entry["within_one_se"] = bool(entry["cv_miou"] >= base["cv_miou"] - error)
            entry["fast_enough"] = bool(entry["cpu_speedup"] >= 1.3)
            entry["passes_rule"] = entry["within_one_se"] and entry["fast_enough"]
            if entry["passes_rule"]:
                passing.append(label)
        best = max(passing, key=lambda k: out[k]["cpu_speedup"]) if passing else None
        payload["decision"] = {"rule": RULE, "baseline_standard_error": error, "passing": passing,
                               "new_default": best}
    return out


# -- main -----------------------------------------------------------------------------------------
def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--phases-child":
        threads = int(sys.argv[5]) if len(sys.argv) > 5 else None
        return _phases_child(Path(sys.argv[2]), Path(sys.argv[3]), threads)
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="labelled images (first n of labeled_pool)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="MLP seeds of the CV")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds on all n images")
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    p.add_argument("--score-test", action="store_true",
                   help="after the CV, fit the lever the rule chose on the n images and score the test split once")
    p.add_argument("--skip-phases", action="store_true", help="do not measure the CLI's phase breakdown")
    p.add_argument("--max-minutes", type=float, default=None, help="start nothing new after this; rerun to resume")
    args = p.parse_args(argv)
    from sklearn.model_selection import GroupKFold

    from sklearn_ddpm import make_segmenter

    if args.quick:
        args.n, args.folds, args.seeds, args.rounds = 4, 2, [0], 1
    if BASELINE not in args.levers:
        args.levers.insert(0, BASELINE)
    name = "ensemble_speed" + ("_quick" if args.quick else "")
    path = args.out or RESULTS_DIR / f"{name}.json"
    payload = {"model": str(BUNDLED_MODEL), "protocol": __doc__, "rule": RULE, "n": args.n, "folds": args.folds,
               "seeds": args.seeds, "levers": {k: LEVERS[k] for k in args.levers}, "timing": [], "cv": {}}
    if path.exists():  # resume: what was measured is kept
        previous = json.loads(path.read_text())
        for key, value in previous.items():
            if key in ("timing", "cv", "features", "test") or key.startswith("phases"):
                payload[key] = value
    began = time.monotonic()

    def out_of_time():
        return args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes

    root = DATA_DIR / "weizmann_horse"
    splits = json.loads((root / "splits.json").read_text())
    # one record per thread setting: the CLI's default (torch's, 2 here) and --threads N
    phases_key = "phases" if args.threads is None else f"phases_threads_{args.threads}"
    if not args.skip_phases and phases_key not in payload and not args.quick:
        print("phase breakdown of the CLI default fit ...", flush=True)
        payload[phases_key] = _phases(args, root, splits)
        write_json(name, payload, path)
    with torch_threads(args.threads):
        images, masks = _load("labeled_pool", args.n)
        settings = {"n_classes": 2}
        if args.quick:
            images, masks = [im[:48, :64] for im in images], [m[:48, :64] for m in masks]
            settings.update(n_estimators=2, max_epochs=2, steps=(50,))
        pipe = make_segmenter(**settings)
        wall, cpu = time.perf_counter(), time.process_time()
        features = pipe[0].fit_transform(images)
        payload["features"] = {"wall_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                               "n_features": int(features.n_features), "nbytes": int(features.nbytes),
                               "dtype": str(features.dtype), "note": "extracted once, seed 0, reused by every fit"}
        template = pipe[-1]
        payload["settings"] = {**settings, "classifier": "make_segmenter() defaults", "mlp_seed_timing": 0}
        groups = np.arange(len(images))
        splits_cv = list(GroupKFold(n_splits=args.folds).split(groups, groups=groups))

        # speed: all n images, levers interleaved round by round
        for r in range(args.rounds):
            for label in args.levers:
                if any(t["round"] == r and t["lever"] == label for t in payload["timing"]) or out_of_time():
                    continue
                clf = _classifier(template, label, 0)
                row = {"round": r, "lever": label, **_timed_fit(clf, features, masks)}
                itemsize = 2 if clf.autocast_dtype_ == "bfloat16" else 4
                row["training_features_bytes"] = row["n_training_pixels"] * features.n_features * itemsize
                payload["timing"].append(row)
                print(f"round {r} {label:20s} {row['wall_seconds']:6.1f} s wall {row['cpu_seconds']:6.1f} CPU s "
                      f"load {row['load_average_before']}", flush=True)
                write_json(name, payload, path)
        # accuracy: GroupKFold CV, levers interleaved within each (seed, fold)
        for seed in args.seeds:
            for f, (train, held_out) in enumerate(splits_cv):
                for label in args.levers:
                    key = f"{label}|{seed}|{f}"
                    if key in payload["cv"] or out_of_time():
                        continue
                    clf = _classifier(template, label, seed)
                    row = _timed_fit(clf, features[train], [masks[i] for i in train])
                    wall = time.perf_counter()
                    row["miou"] = 100 * clf.score(features[held_out], [masks[i] for i in held_out])
                    row["score_wall_seconds"] = time.perf_counter() - wall
                    payload["cv"][key] = row
                    print(f"seed {seed} fold {f} {label:20s} mIoU {row['miou']:5.1f} fit {row['cpu_seconds']:5.1f} "
                          f"CPU s", flush=True)
                    write_json(name, payload, path)
        payload["summary"] = _summary(payload, args.levers, args.seeds, args.folds)
        path = write_json(name, payload, path)
        chosen = payload.get("decision", {}).get("new_default")
        if args.score_test and chosen and "test" not in payload and not out_of_time():
            # the lever the rule chose, fitted on the n labelled images (MLP seed 0) and scored once
            clf = _classifier(template, chosen, 0)
            fit = _timed_fit(clf, features, masks)
            test_images, test_masks = _load("test", None)
            wall = time.perf_counter()
            test_features = pipe[0].transform(test_images)
            miou = 100 * clf.score(test_features, test_masks)
            payload["test"] = {"lever": chosen, "params": LEVERS[chosen], "n_images": len(test_images), "miou": miou,
                               "fit": fit, "features_and_score_wall_seconds": time.perf_counter() - wall, "seeds": 1,
                               "note": "the lever chosen by the rule, scored once on the test split after the CV"}
            path = write_json(name, payload, path)
            print(f"test mIoU of {chosen}: {miou:.1f} ({len(test_images)} images)")
    print(f"{'lever':20s} {'CV mIoU':>14s} {'CPU s':>7s} {'wall s':>7s} {'speed-up':>8s} {'rule':>5s}")
    for label, e in payload["summary"].items():
        cv = "-" if e["cv_miou"] is None else f"{e['cv_miou']:.1f}" + (
            "" if e["cv_miou_std_over_seeds"] is None else f" ± {e['cv_miou_std_over_seeds']:.1f}")
        print(f"{label:20s} {cv:>14s} {e.get('median_cpu_seconds', float('nan')):7.1f} "
              f"{e.get('median_wall_seconds', float('nan')):7.1f} {e.get('cpu_speedup', 1.0):8.2f} "
              f"{str(e.get('passes_rule', '-')):>5s}")
    if "decision" in payload:
        print(f"new default: {payload['decision']['new_default']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
