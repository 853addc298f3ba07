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
- The cap chosen by CV is refitted on the 20 images (by ``select_segmenter``) and scored once on
  the test split (``--score-test``).

Writes ``benchmarks/results/pixel_caps_<dataset>.json``: per candidate the per-fold mIoU, the CV
mean and fold std, and the mean fit seconds per fold (15 images), plus the machine and its load.
"""

import time

import numpy as np

from _common import REPO_ROOT, DATA_DIR, machine, parser, torch_threads, write_json

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


def _rows(result, fold_ids):
    rows = []
    results = result.cv_results_
    n_splits = len(fold_ids)
    for k, params in enumerate(results["params"]):
        folds = [float(results[f"split{j}_test_score"][k]) * 100 for j in range(n_splits)]
        rows.append({
            "params": {key: value for key, value in params.items()},
            "folds": fold_ids,
            "fold_miou": folds,
            "cv_miou": float(np.mean(folds)),
            "cv_miou_std_over_folds": float(np.std(folds, ddof=1)) if len(folds) > 1 else None,
            "fit_seconds_mean": float(results["mean_fit_time"][k]),
        })
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["weizmann", "ccp"], default="weizmann")
    p.add_argument("--n", type=int, default=20, help="labelled images (first n of labeled_pool)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--caps", type=int, nargs="*", default=[1000, 2000, 5000, 10000, 20000])
    p.add_argument("--class-caps", type=int, nargs="*", default=[500, 2500])
    p.add_argument("--all-pixels-folds", type=int, default=1, help="folds on which all pixels are fitted (0: none)")
    p.add_argument("--score-test", action="store_true", help="score the CV-chosen cap once on the test split")
    args = p.parse_args(argv)
    from sklearn.model_selection import GroupKFold, check_cv

    from sklearn_ddpm.model_selection import select_segmenter

    if args.quick:
        args.n, args.folds, args.caps, args.class_caps, args.all_pixels_folds = 4, 2, [50, 100], [25], 1
    name = f"pixel_caps_{args.dataset}"
    payload = {"model": str(BUNDLED_MODEL), "benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"), "protocol": __doc__,
               "dataset": args.dataset, "n": args.n, "folds": args.folds}
    with torch_threads(args.threads):
        images, masks, n_classes = _load(args.dataset, "labeled_pool", args.n)
        if args.quick:
            images = [im[:48, :64] for im in images]
            masks = [m[:48, :64] for m in masks]
        groups = np.arange(len(images))
        splits = list(GroupKFold(n_splits=args.folds).split(groups, groups=groups))
        common = {"n_classes": n_classes, "budget": None, "progress": not args.quick}
        if args.quick:
            common.update(n_estimators=2, max_epochs=2, steps=(50,))
        grid = [{"clf__max_pixels_per_image": list(args.caps)}]
        if args.class_caps:
            grid.append({"clf__max_pixels_per_image": [None], "clf__max_pixels_per_class": list(args.class_caps)})
        start = time.perf_counter()
        capped = select_segmenter(images, masks, search=grid, cv=check_cv(splits), **common)
        payload["capped"] = {"rows": _rows(capped, list(range(args.folds))), "best_params": capped.best_params_,
                             "seconds": time.perf_counter() - start, "load_average_after": machine()["load_average_1min"]}
        write_json(name, payload, args.out)
        if args.all_pixels_folds:
            start = time.perf_counter()
            everything = select_segmenter(images, masks, search={"clf__max_pixels_per_image": [None]},
                                          cv=check_cv(splits[: args.all_pixels_folds]), **common)
            payload["all_pixels"] = {"rows": _rows(everything, list(range(args.all_pixels_folds))),
                                     "seconds": time.perf_counter() - start,
                                     "load_average_after": machine()["load_average_1min"]}
            write_json(name, payload, args.out)
        if args.score_test:
            test_images, test_masks, _ = _load(args.dataset, "test", None)
            start = time.perf_counter()
            score = capped.segmenter_.score(test_images, test_masks)
            payload["test"] = {"params": capped.best_params_, "n_images": len(test_images), "miou": score * 100,
                               "seconds": time.perf_counter() - start, "seeds": 1,
                               "note": "the CV-chosen setting refitted on the n labelled images, scored once"}
        payload["machine"] = machine()
        path = write_json(name, payload, args.out)
    print(f"{'candidate':50s} {'CV mIoU':>8s} {'fit s':>7s}")
    for part in ("capped", "all_pixels"):
        for row in payload.get(part, {}).get("rows", []):
            print(f"{str(row['params']):50s} {row['cv_miou']:8.1f} {row['fit_seconds_mean']:7.0f}  folds {row['folds']}")
    if "test" in payload:
        print(f"test mIoU of {payload['test']['params']}: {payload['test']['miou']:.1f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
