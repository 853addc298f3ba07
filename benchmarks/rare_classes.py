"""Rare classes on CCP under the CV-only protocol: class-balanced sampling, class-weighted loss, a CV-fitted bias (issue 29).

CCP's coarse classes dress, legwear, hat/glasses and accessories stay at IoU 0-7 with the protocol's
settings. This benchmark measures three levers on their per-class IoU, with the CV-only protocol:

- Labelled data: the first ``n`` (20) photos of ``labeled_pool`` (coarse masks); ``GroupKFold(folds)``
  over them, one group per photo (the splits of ``pixel_caps.py``). Nothing else is looked at.
- ``default``: ``make_segmenter(n_classes=11)`` with every package default, i.e. class-balanced
  sampling of at most 500 labelled pixels per class and image (``max_pixels_per_class=500``).
- ``class-weighted``: the same plus ``clf__class_weight="balanced"``: the loss weights that the
  classifier routes to skorch's ``CrossEntropyLoss(weight=...)``, inverse to the class frequencies of
  the (sampled) training pixels, normalised by scikit-learn's ``compute_class_weight`` (mean weight
  over the pixels is 1).
- ``cap 1000``: at most 1,000 labelled pixels per photo sampled whatever their class (pixels by
  area) instead of class-balanced sampling (``pixel_caps.py``'s per-image cap, issue 26).
- ``default + CV bias``: the default's held-out probabilities with a per-class additive bias on
  their logarithm (a per-class threshold), argmax after. The bias used on held-out fold ``k`` is
  fitted only on the out-of-fold predictions of the *other* folds' photos and their masks
  (coordinate ascent over a grid, maximising the mIoU summed over those photos), so fold ``k``'s
  masks never choose its bias. Caveat, stated rather than hidden: the other folds' out-of-fold
  predictions came from models that trained on fold ``k``'s photos (cross-fitting, not fully nested:
  nesting would cost 12 more fits on this CPU).
- Scores: per fold, the pipeline's mIoU (classes present in truth or prediction over the fold's
  pixels); per class, the IoU of the confusion matrix summed over the held-out folds.

Writes ``benchmarks/results/rare_classes_ccp.json``; resumes per (candidate, fold) from it and from
the held-out probabilities kept under ``--cache``.
"""

import json
import time
from pathlib import Path

import numpy as np

from _common import RESULTS_DIR, machine, parser, torch_threads, write_json
from pixel_caps import BUNDLED_MODEL, _load

RARE = ("dress", "legwear", "hat_glasses", "accessories")
CANDIDATES = {"default": {}, "class-weighted": {"clf__class_weight": "balanced"},
              # a per-image cap samples classes by their area, the opposite of class-balanced sampling
              "cap 1000": {"clf__max_pixels_per_image": 1000, "clf__max_pixels_per_class": None}}
BIAS_GRID = np.linspace(-2.0, 4.0, 25)  # added to log-probabilities: a class's odds x e^-2 .. e^4


def _confusion(masks, labels, n_classes):
    from sklearn_ddpm.metrics import confusion_matrix_images

    return confusion_matrix_images(masks, labels, n_classes=n_classes)


def _miou(cm):
    from sklearn_ddpm.metrics import iou_from_confusion

    return float(np.nanmean(iou_from_confusion(cm)))


def _biased(log_probs, bias):
    return [np.argmax(lp + bias, axis=-1) for lp in log_probs]


def fit_bias(log_probs, masks, n_classes, grid=BIAS_GRID, sweeps=2):
    """Per-class additive bias on log-probabilities maximising the mIoU summed over the given images.

    Coordinate ascent: each class's bias in turn takes the grid value with the best mIoU, the others
    fixed; class 0 stays at 0 (only differences matter). Ties keep the current value.
    """
    bias = np.zeros(n_classes)
    best = _miou(_confusion(masks, _biased(log_probs, bias), n_classes))
    for _ in range(sweeps):
        for c in range(1, n_classes):
            for value in grid:
                trial = bias.copy()
                trial[c] = value
                score = _miou(_confusion(masks, _biased(log_probs, trial), n_classes))
                if score > best + 1e-12:
                    best, bias = score, trial
    return bias, best


def _summary(cms, class_names):
    from sklearn_ddpm.metrics import iou_from_confusion

    iou = iou_from_confusion(np.sum(cms, axis=0)) * 100
    per_class = {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, iou)}
    rare = [per_class[c] for c in RARE if per_class[c] is not None]
    return {"per_class_iou": per_class, "miou_summed_over_folds": float(np.nanmean(iou)),
            "rare_mean_iou": float(np.mean(rare)) if rare else None}


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="labelled photos (first n of labeled_pool)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--candidates", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--cache", type=Path, default=Path("/tmp/rare_classes_cache"),
                   help="held-out probabilities (float16) kept here for the bias and for resuming")
    p.add_argument("--max-minutes", type=float, default=None, help="start no fit after this; rerun to resume")
    p.add_argument("--model", type=Path, default=None,
                   help="DDPM folder (default: the bundled horse DDPM); give --out with it")
    args = p.parse_args(argv)
    from sklearn.model_selection import GroupKFold

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.datasets import load_ccp_clothing
    from _common import DATA_DIR

    name = "rare_classes_ccp"
    path = args.out or RESULTS_DIR / f"{name}.json"
    class_names = load_ccp_clothing(DATA_DIR / "ccp_clothing", split="labeled_pool", coarse=True, n=1).class_names
    n_classes = len(class_names)
    settings = {"n_classes": n_classes}
    if args.quick:
        args.n, args.folds = 4, 2
        settings.update(n_estimators=2, max_epochs=2, steps=(50,))
    if args.model is not None:
        if args.out is None:
            p.error("--model needs --out (rare_classes_ccp.json is the bundled backbone's record)")
        settings["model"] = str(args.model)
        note = f"DDPM folder {args.model} (its weights' sha256 in backbone_sha256)"
    else:
        note = "bundled horse DDPM (64x64 input); no CCP backbone in this workspace"
    payload = {"model": str(args.model or BUNDLED_MODEL), "backbone_note": note, "protocol": __doc__, "n": args.n, "folds": args.folds, "class_names": class_names,
               "rare_classes": list(RARE), "settings": {**settings, "other": "make_segmenter() defaults"},
               "fits": {}}
    if path.exists():
        payload["fits"] = json.loads(path.read_text()).get("fits", {})
    # held-out probabilities belong to one backbone: a record of another keeps its own folder
    cache = args.cache / ("quick" if args.quick else "full") / (args.model.name if args.model else "")
    cache.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with torch_threads(args.threads):
        images, masks, _ = _load("ccp", "labeled_pool", args.n)
        if args.quick:  # a centre crop keeps several classes
            h, w = images[0].shape[0] // 2, images[0].shape[1] // 2
            images, masks = [im[h - 24:h + 24, w - 32:w + 32] for im in images], [m[h - 24:h + 24, w - 32:w + 32]
                                                                                   for m in masks]
        groups = np.arange(len(images))
        splits = list(GroupKFold(n_splits=args.folds).split(groups, groups=groups))
        payload["split_test_images"] = [test.tolist() for _, test in splits]
        stopped = False
        for label in args.candidates:
            for k, (train, test) in enumerate(splits):
                key = f"{label}/fold{k}"
                if key in payload["fits"] and (cache / f"{label}_fold{k}.npz").exists():
                    continue
                if args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes:
                    print(f"--max-minutes reached before {key}; rerun to resume")
                    stopped = True
                    break
                pipe = make_segmenter(**settings).set_params(**CANDIDATES[label])
                wall, cpu = time.perf_counter(), time.process_time()
                pipe.fit([images[i] for i in train], [masks[i] for i in train])
                fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
                probs = pipe.predict_proba([images[i] for i in test])
                held = [masks[i] for i in test]
                cm = _confusion(held, [pr.argmax(-1) for pr in probs], n_classes)
                np.savez_compressed(cache / f"{label}_fold{k}.npz", *[pr.astype(np.float16) for pr in probs])
                payload["fits"][key] = {"params": CANDIDATES[label], "test_images": test.tolist(),
                                        "miou": _miou(cm) * 100, "confusion": cm.tolist(),
                                        "fit_seconds": fit_wall, "fit_cpu_seconds": fit_cpu,
                                        "fold_wall_seconds": time.perf_counter() - wall,
                                        "fold_cpu_seconds": time.process_time() - cpu,
                                        "load_average_after": machine()["load_average_1min"]}
                print(f"{key}: mIoU {payload['fits'][key]['miou']:.1f} fit {fit_wall:.0f} s", flush=True)
                write_json(name, payload, path)
            if stopped:
                break

        results = {}
        for label in CANDIDATES:
            keys = [f"{label}/fold{k}" for k in range(args.folds)]
            if all(key in payload["fits"] for key in keys):
                cms = [np.asarray(payload["fits"][key]["confusion"]) for key in keys]
                fold_miou = [payload["fits"][key]["miou"] for key in keys]
                results[label] = {"fold_miou": fold_miou, "cv_miou": float(np.mean(fold_miou)),
                                  "cv_miou_std_over_folds": float(np.std(fold_miou, ddof=1)),
                                  **_summary(cms, class_names)}
        default_files = [cache / f"default_fold{k}.npz" for k in range(args.folds)]
        if "default" in results and all(f.exists() for f in default_files):
            # log-probabilities of every photo's held-out prediction, by fold
            log_probs = []
            for f in default_files:
                with np.load(f) as z:
                    arrays = sorted(z.files, key=lambda a: int(a.split("_")[1]))  # arr_0, arr_1, ...: photo order
                    log_probs.append([np.log(z[a].astype(np.float32) + 1e-6) for a in arrays])
            held = [[masks[i] for i in test] for _, test in splits]
            cms, biases, fold_miou, cal_miou = [], [], [], []
            for k in range(args.folds):
                others = [j for j in range(args.folds) if j != k]
                # every 4th row and column of the calibration photos: the same ranking, 16x fewer pixels
                cal_lp = [lp[::4, ::4] for j in others for lp in log_probs[j]]
                cal_masks = [m[::4, ::4] for j in others for m in held[j]]
                bias, cal = fit_bias(cal_lp, cal_masks, n_classes)
                cm = _confusion(held[k], _biased(log_probs[k], bias), n_classes)
                cms.append(cm)
                biases.append(bias.tolist())
                fold_miou.append(_miou(cm) * 100)
                cal_miou.append(cal * 100)
            results["default + CV bias"] = {
                "fold_miou": fold_miou, "cv_miou": float(np.mean(fold_miou)),
                "cv_miou_std_over_folds": float(np.std(fold_miou, ddof=1)), "bias_per_fold": biases,
                "calibration_miou_per_fold": cal_miou, "bias_grid": BIAS_GRID.tolist(), **_summary(cms, class_names)}
        payload["results"] = results
        path = write_json(name, payload, path)
    print(f"{'candidate':20s} {'CV mIoU':>8s} {'rare':>6s}  " + " ".join(f"{c[:6]:>6s}" for c in class_names))
    for label, r in payload["results"].items():
        print(f"{label:20s} {r['cv_miou']:8.1f} {r['rare_mean_iou'] or float('nan'):6.1f}  "
              + " ".join(f"{(v if v is not None else float('nan')):6.1f}" for v in r["per_class_iou"].values()))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
