"""Training pixels per image: all labelled pixels against caps and class-balanced sampling (issue 26).

The classifier trains on all labelled pixels by default in the paper; with the reference's stop
rule (every member trains at least 4 epochs) the fit's time grows with the pixels, and a user's
default fit on 20 horses ran for more than 35 minutes. This benchmark measures, under the CV-only
protocol, what the cap costs in accuracy and buys in time:

- Labelled data: the first ``n`` (20) images of ``labeled_pool``; nothing else is looked at while
  choosing. ``GroupKFold(folds)`` over them (one group per image), through the package's own
  selection code path (:func:`sklearn_ddpm.model_selection.select_segmenter` with an explicit grid);
  every other setting is the package default (``make_segmenter()``).
- Candidates: ``max_pixels_per_image`` in ``--caps``, class-balanced sampling
  (``max_pixels_per_class`` in ``--class-caps``, per image), and all labelled pixels. All pixels
  costs tens of minutes a fold on this CPU, so it runs on the first ``--all-pixels-folds`` folds
  only; the comparison with the caps is paired on those folds.
- The candidate chosen by CV is fitted on the n images and scored once on
  the test split (``--score-test``): its fit on the n images is timed too; when the choice is not
  the package default (500 pixels per class), the default is fitted and scored too, in the same run.
- ``--rows-from R``: candidates that ``rare_classes.py`` already fitted on the same folds (same
  settings, seed and splits; its record ``R``) are taken from it rather than fitted again.

Writes ``benchmarks/results/pixel_caps_<dataset>.json``: per candidate the per-fold mIoU, the CV
mean and fold std, and the mean fit seconds per fold (15 images), plus the machine and its load.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from _common import DATA_DIR, REPO_ROOT, RESULTS_DIR, machine, parser, torch_threads, write_json

BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"  # make_segmenter(model=None) loads it


def _load(dataset, split, n):
    from sklearn_ddpm.datasets import load_ccp_clothing
    from sklearn_ddpm.datasets._io import load_split_folder

    if dataset == "ccp":
        data = load_ccp_clothing(DATA_DIR / "ccp_clothing", split=split, coarse=True, n=n)
        return data.images, data.masks, len(data.class_names)
    images, masks, _, _ = load_split_folder(DATA_DIR / "weizmann_horse", split, image_dir="images",
                                            mask_dir="masks", n=n, with_masks=True, dataset="Weizmann horse")
    return images, masks, 2


def cv_setup(dataset, n, folds, quick):
    """``(images, masks, splits, settings)``: the first ``n`` ``labeled_pool`` images, ``GroupKFold(folds)``
    with one group per image, and the ``make_segmenter`` keywords; ``quick``: crops and a tiny ensemble."""
    from sklearn.model_selection import GroupKFold

    images, masks, n_classes = _load(dataset, "labeled_pool", n)
    if quick:
        # CCP's corners are background: a crop around the centre keeps several classes
        crop = (slice(None, 48), slice(None, 64)) if dataset == "weizmann" else (
            slice(images[0].shape[0] // 2 - 24, images[0].shape[0] // 2 + 24),
            slice(images[0].shape[1] // 2 - 32, images[0].shape[1] // 2 + 32))
        images, masks = [im[crop] for im in images], [m[crop] for m in masks]
    groups = np.arange(len(images))
    splits = list(GroupKFold(n_splits=folds).split(groups, groups=groups))
    settings = {"n_classes": n_classes}
    if quick:
        settings.update(n_estimators=2, max_epochs=2, steps=(50,))
    return images, masks, splits, settings


def _row(params, result, fold_ids):
    """One candidate's CV row from a one-candidate ``select_segmenter`` result."""
    results = result.cv_results_
    folds = [float(results[f"split{j}_test_score"][0]) * 100 for j in range(len(fold_ids))]
    return {
        "params": params,
        "folds": fold_ids,
        "fold_miou": folds,
        "cv_miou": float(np.mean(folds)),
        "cv_miou_std_over_folds": float(np.std(folds, ddof=1)) if len(folds) > 1 else None,
        "fit_seconds_mean": float(results["mean_fit_time"][0]),
        "load_average_after": machine()["load_average_1min"],
    }


CHOICE_RULE = ("one-standard-error rule, fixed before the run: the candidate with the shortest fit among those whose "
               "CV mean is at least the best CV mean minus the best candidate's standard error over the folds "
               "(fold std / sqrt(folds)); a default must be fast as well as good")


def _choose(rows):
    """The fastest candidate within one standard error of the best CV mean (:data:`CHOICE_RULE`)."""
    best = max(rows, key=lambda r: r["cv_miou"])
    error = (best["cv_miou_std_over_folds"] or 0.0) / np.sqrt(len(best["folds"]))
    return min((r for r in rows if r["cv_miou"] >= best["cv_miou"] - error), key=lambda r: r["fit_seconds_mean"])


# MLPEnsembleClassifier's defaults (max_pixels_per_class=500, chosen on Weizmann by this script)
DEFAULT_PARAMS = {"clf__max_pixels_per_image": None, "clf__max_pixels_per_class": 500}


def _same(params, other):
    """Whether two candidates' parameters give the same classifier (missing entries: the defaults)."""
    return {**DEFAULT_PARAMS, **params} == {**DEFAULT_PARAMS, **other}


def _candidates(args):
    """``(label, params, folds)``: the caps, class-balanced sampling, then all pixels on the first folds."""
    folds = list(range(args.folds))
    # each candidate names both caps: the package default caps pixels per class (500), so a per-image
    # cap or "all pixels" must lift that cap explicitly
    out = [(f"cap {c}", {"clf__max_pixels_per_image": c, "clf__max_pixels_per_class": None}, folds)
           for c in args.caps]
    out += [(f"class cap {c}", {"clf__max_pixels_per_image": None, "clf__max_pixels_per_class": c}, folds)
            for c in args.class_caps]
    if args.all_pixels_folds:
        out.append(("all pixels", {"clf__max_pixels_per_image": None, "clf__max_pixels_per_class": None},
                    folds[: args.all_pixels_folds]))
    return out


def _rows_from_rare_classes(record, candidates, splits):
    """CV rows of ``candidates`` already fitted by ``rare_classes.py`` (its record ``record``).

    That script fits ``make_segmenter`` with the same settings, seed and ``GroupKFold`` splits and
    scores each held-out fold with the pipeline's mIoU, so its folds are this script's; it also keeps
    per-class IoU. Reusing them saves the fits on a shared 2-core CPU. Its fits do not go through
    ``select_segmenter`` (no activation cache, ``batch_size="auto"``): the row says where it came from.
    """
    if record["split_test_images"] != [test.tolist() for _, test in splits]:
        raise ValueError("rare_classes record has other folds than this run")
    rows = []
    for label, params, folds in candidates:
        for rare_label in {key.split("/")[0] for key in record["fits"]}:
            keys = [f"{rare_label}/fold{k}" for k in folds]
            fits = [record["fits"].get(key) for key in keys]
            if None in fits or not _same(fits[0]["params"], params):
                continue
            fold_miou = [f["miou"] for f in fits]
            rows.append({"label": label, "params": params, "folds": folds, "fold_miou": fold_miou,
                         "cv_miou": float(np.mean(fold_miou)),
                         "cv_miou_std_over_folds": float(np.std(fold_miou, ddof=1)) if len(folds) > 1 else None,
                         "fit_seconds_mean": float(np.mean([f["fit_seconds"] for f in fits])),
                         "fit_cpu_seconds_mean": float(np.mean([f["fit_cpu_seconds"] for f in fits])),
                         "load_average_after": [f["load_average_after"] for f in fits],
                         "source": f"rare_classes_ccp.json candidate {rare_label!r}: make_segmenter fits on the same "
                                   "GroupKFold splits, seed and settings, scored by the pipeline's mIoU (not "
                                   "through select_segmenter)"})
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["weizmann", "ccp"], default="weizmann")
    p.add_argument("--n", type=int, default=20, help="labelled images (first n of labeled_pool)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--caps", type=int, nargs="*", default=[1000, 2000, 5000, 10000])
    p.add_argument("--class-caps", type=int, nargs="*", default=[500])
    p.add_argument("--all-pixels-folds", type=int, default=1, help="folds on which all pixels are fitted (0: none)")
    p.add_argument("--score-test", action="store_true",
                   help="after the CV, fit the CV-chosen candidate on the n images and score the test split once")
    p.add_argument("--rows-from", type=Path, default=None,
                   help="a rare_classes.py record: candidates it fitted on the same folds are taken from it")
    p.add_argument("--max-minutes", type=float, default=None, help="start no candidate after this; rerun to resume")
    args = p.parse_args(argv)
    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.model_selection import select_segmenter

    if args.quick:
        # tiny caps unless the caller named some
        given = argv if argv is not None else sys.argv[1:]
        args.n, args.folds = 4, 2
        if "--caps" not in given:
            args.caps = [50, 100]
        if "--class-caps" not in given:
            args.class_caps = [25]
        if "--all-pixels-folds" not in given:
            args.all_pixels_folds = 1
    name = f"pixel_caps_{args.dataset}"
    path = args.out or RESULTS_DIR / f"{name}.json"
    payload = {"model": str(BUNDLED_MODEL), "protocol": __doc__, "dataset": args.dataset, "n": args.n,
               "folds": args.folds, "rows": []}
    if args.dataset == "ccp":
        payload["backbone_note"] = ("bundled horse DDPM (64x64 input): there is no CCP backbone in this workspace, "
                                    "so the figures are not comparable with the CCP-backbone records")
    if path.exists():  # resume: candidates already measured are kept
        previous = json.loads(path.read_text())
        payload["rows"] = previous.get("rows", [])
    done = {json.dumps(r["params"], sort_keys=True) for r in payload["rows"]}
    began = time.monotonic()
    with torch_threads(args.threads):
        images, masks, splits, settings = cv_setup(args.dataset, args.n, args.folds, args.quick)
        payload["settings"] = {**settings, "other": "make_segmenter() defaults"}
        if args.rows_from is not None:
            for row in _rows_from_rare_classes(json.loads(args.rows_from.read_text()), _candidates(args), splits):
                if json.dumps(row["params"], sort_keys=True) not in done:
                    payload["rows"].append(row)
                    done.add(json.dumps(row["params"], sort_keys=True))
        for label, params, folds in _candidates(args):
            if json.dumps(params, sort_keys=True) in done:
                continue
            if args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes:
                print(f"--max-minutes reached before {label}; rerun to resume")
                break
            wall, cpu = time.perf_counter(), time.process_time()
            result = select_segmenter(images, masks, search={k: [v] for k, v in params.items()},
                                      cv=[splits[k] for k in folds], budget=None, refit=False,
                                      progress=not args.quick, **settings)
            # the whole candidate (fits, predictions, scoring) in wall and in this process's CPU seconds:
            # on a shared machine the wall clock alone says little
            payload["rows"].append({"label": label, **_row(params, result, folds),
                                    "candidate_wall_seconds": time.perf_counter() - wall,
                                    "candidate_cpu_seconds": time.process_time() - cpu})
            write_json(name, payload, path)
        full = [r for r in payload["rows"] if r["folds"] == list(range(args.folds))]
        if full and len(full) == len([c for c in _candidates(args) if c[2] == list(range(args.folds))]):
            best = _choose(full)
            payload["chosen"] = {"label": best["label"], "params": best["params"], "cv_miou": best["cv_miou"],
                                 "rule": CHOICE_RULE}
            if args.score_test:
                test_images, test_masks, _ = None, None, None
                # the CV choice, and the package default when the choice differs from it (same run)
                for key, label, params in [("test", best["label"], best["params"]),
                                           ("test_default", "package default", DEFAULT_PARAMS)]:
                    if key in payload or (key == "test_default" and _same(params, best["params"])):
                        continue
                    if test_images is None:
                        test_images, test_masks, _ = _load(args.dataset, "test", None)
                    pipe = make_segmenter(**settings).set_params(**params)
                    wall, cpu = time.perf_counter(), time.process_time()
                    pipe.fit(images, masks)
                    fit_seconds, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
                    payload[key] = {"label": label, "params": params, "n_images": len(test_images),
                                    "miou": pipe.score(test_images, test_masks) * 100, "fit_seconds": fit_seconds,
                                    "fit_cpu_seconds": fit_cpu, "load_average_after": machine()["load_average_1min"],
                                    "seeds": 1, "note": "fitted on the n labelled images, scored once on the "
                                    "test split after the CV choice"}
                    write_json(name, payload, path)
        path = write_json(name, payload, path)
    print(f"{'candidate':16s} {'folds':>10s} {'CV mIoU':>8s} {'fit s':>7s}")
    for row in payload["rows"]:
        print(f"{row['label']:16s} {str(row['folds']):>10s} {row['cv_miou']:8.1f} {row['fit_seconds_mean']:7.0f}")
    for key in ("test", "test_default"):
        if key in payload:
            print(f"test mIoU of {payload[key]['label']}: {payload[key]['miou']:.1f}")
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
