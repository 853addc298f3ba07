"""Self-training on the unlabelled images, chosen by cross-validation (issue 29, item 3).

The paper uses the unlabelled images only to train the DDPM. Here the pixel classifier uses them
too: :class:`sklearn_ddpm.semi_supervised.SelfTrainingSegmenter` fits the package's default
segmenter on the labelled images, pseudo-labels the unlabelled ones, keeps the pixels whose
ensemble uncertainty (members' Jensen-Shannon divergence) is lowest with the synthetic
pseudo-labels' filter, and refits on both, ``n_rounds`` times.

- Labelled data: the first ``n`` (20) images of ``labeled_pool``; unlabelled data: the first
  ``--n-unlabelled`` images of the ``unlabeled`` split (a subset, to fit the CPU budget: each
  round's fit trains on their pixels too). Nothing of ``test`` is looked at while choosing.
- CV: ``GroupKFold(folds)`` over the labelled images (one group per image); the unlabelled images
  are in every training set and never score (their masks are entirely 255). Every candidate runs
  on the same folds, fold after fold (so a run stopped by ``--max-minutes`` leaves complete, paired
  folds), with one activation cache: the UNet runs once per image and step.
- Candidates: ``n_rounds=0`` (the package default segmenter on the labelled images: the baseline)
  and ``n_rounds`` in ``--rounds`` with ``keep_fraction`` in ``--keep-fractions``; every other
  setting is ``make_segmenter()``'s default.
- The choice (:data:`CHOICE_RULE`, fixed before the run), then ``--score-test``: the CV choice and
  the baseline are fitted on the n labelled (+ unlabelled) images and scored once on the whole test
  split, in the same run; when the choice is the baseline, the best self-training candidate is
  scored too, for the record (it chooses nothing).

Writes ``benchmarks/results/self_training_<dataset>.json``: per fold and candidate the validation
mIoU, the pseudo-labelled pixels kept per round, wall and CPU seconds and the load average; the CV
table; the choice; the test scores.
"""

import json
import time

import numpy as np

from _common import DATA_DIR, REPO_ROOT, RESULTS_DIR, machine, parser, torch_threads, write_json

BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"  # make_segmenter(model=None) loads it

CHOICE_RULE = ("fixed before the run: self-training is worth it if the self-training candidate with the best CV mean "
               "beats n_rounds=0 by more than one standard error of the paired per-fold difference (sample std over "
               "folds, ddof=1, / sqrt(folds)); then that candidate is chosen, otherwise n_rounds=0")


def _load(dataset, split, n):
    from sklearn_ddpm.datasets import load_ccp_clothing
    from sklearn_ddpm.datasets._io import load_split_folder

    if dataset == "ccp":
        data = load_ccp_clothing(DATA_DIR / "ccp_clothing", split=split, coarse=True, n=n)
        return data.images, data.masks, len(data.class_names)
    images, masks, _, _ = load_split_folder(DATA_DIR / "weizmann_horse", split, image_dir="images",
                                            mask_dir="masks", n=n, with_masks=split != "unlabeled",
                                            dataset="Weizmann horse")
    return images, masks, 2


def _candidates(args):
    out = [("rounds 0", {"n_rounds": 0})]
    out += [(f"rounds {r} keep {k}", {"n_rounds": r, "keep_fraction": k}) for r in args.rounds
            for k in args.keep_fractions]
    return out


def _key(params):
    return json.dumps(params, sort_keys=True)


def _table(payload, candidates, folds):
    """CV rows of the candidates measured on every fold."""
    rows = []
    for label, params in candidates:
        runs = {r["fold"]: r for r in payload["runs"] if r["key"] == _key(params)}
        if sorted(runs) != folds:
            continue
        scores = [runs[f]["miou"] for f in folds]
        rows.append({"label": label, "params": params, "fold_miou": scores, "cv_miou": float(np.mean(scores)),
                     "cv_miou_std_over_folds": float(np.std(scores, ddof=1)),
                     "fit_seconds_mean": float(np.mean([runs[f]["fit_seconds"] for f in folds])),
                     "fit_cpu_seconds_mean": float(np.mean([runs[f]["fit_cpu_seconds"] for f in folds])),
                     "n_pseudo_pixels_mean": [float(v) for v in np.mean(
                         [runs[f]["n_pseudo_pixels"] for f in folds], axis=0)] if params["n_rounds"] else []})
    return rows


def _choose(rows):
    """:data:`CHOICE_RULE`: ``(chosen row, best self-training row, paired difference, its SE)``."""
    base = next(r for r in rows if r["params"]["n_rounds"] == 0)
    trained = [r for r in rows if r["params"]["n_rounds"] > 0]
    best = max(trained, key=lambda r: r["cv_miou"])
    diff = np.subtract(best["fold_miou"], base["fold_miou"])
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
    return (best if diff.mean() > se else base), best, float(diff.mean()), se


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["weizmann", "ccp"], default="weizmann")
    p.add_argument("--n", type=int, default=20, help="labelled images (first n of labeled_pool)")
    p.add_argument("--n-unlabelled", type=int, default=40, help="unlabelled images (first of the unlabeled split)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--rounds", type=int, nargs="*", default=[1])
    p.add_argument("--keep-fractions", type=float, nargs="*", default=[0.9, 0.5])
    p.add_argument("--keep-scope", choices=["image", "pool"], default="image")
    p.add_argument("--score-test", action="store_true",
                   help="after the CV, fit the choice and the baseline on all training images, score the test split once")
    p.add_argument("--max-minutes", type=float, default=None, help="start no fit after this; rerun to resume")
    p.set_defaults(threads=1)
    args = p.parse_args(argv)
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.features import ActivationCache
    from sklearn_ddpm.model_selection import CACHE_BYTES
    from sklearn_ddpm.semi_supervised import SelfTrainingSegmenter

    if args.quick:
        args.n, args.n_unlabelled, args.folds, args.rounds, args.keep_fractions = 4, 2, 2, [1], [0.5]
    name = f"self_training_{args.dataset}"
    path = args.out or RESULTS_DIR / f"{name}.json"
    settings = {"n": args.n, "n_unlabelled": args.n_unlabelled, "folds": args.folds, "keep_scope": args.keep_scope}
    payload = {"model": str(BUNDLED_MODEL), "protocol": __doc__, "dataset": args.dataset, **settings,
               "rule": CHOICE_RULE, "runs": []}
    if path.exists():  # resume: (fold, candidate) runs already measured are kept when the settings agree
        previous = json.loads(path.read_text())
        if all(previous.get(k) == v for k, v in settings.items()):
            payload.update({k: previous[k] for k in ("runs", "test", "test_baseline", "test_best_self_training")
                            if k in previous})
    done = {(r["fold"], r["key"]) for r in payload["runs"]}
    began = time.monotonic()
    out_of_time = False
    with torch_threads(args.threads):
        images, masks, n_classes = _load(args.dataset, "labeled_pool", args.n)
        pool, _, _ = _load(args.dataset, "unlabeled", args.n_unlabelled)
        if args.quick:
            # CCP's corners are background: a crop around the centre keeps several classes
            crop = (slice(None, 48), slice(None, 64)) if args.dataset == "weizmann" else (
                slice(images[0].shape[0] // 2 - 24, images[0].shape[0] // 2 + 24),
                slice(images[0].shape[1] // 2 - 32, images[0].shape[1] // 2 + 32))
            images, masks, pool = [im[crop] for im in images], [m[crop] for m in masks], [im[crop] for im in pool]
        blank = [np.full(im.shape[:2], 255, np.uint8) for im in pool]
        seg_settings = {"n_classes": n_classes}
        if args.quick:
            seg_settings.update(n_estimators=2, max_epochs=2, steps=(50,))
        payload["segmenter"] = {**seg_settings, "other": "make_segmenter() defaults"}
        # single-image UNet passes, so that an image's activations are cached under the same key in every fold
        base = SelfTrainingSegmenter(make_segmenter(memory=ActivationCache(CACHE_BYTES), batch_size=1, **seg_settings),
                                     keep_scope=args.keep_scope)
        candidates = _candidates(args)
        labelled = np.arange(len(images))
        splits = list(GroupKFold(n_splits=args.folds).split(labelled, groups=labelled))
        all_images = list(images) + list(pool)
        for fold, (train, test) in enumerate(splits):
            for label, params in candidates:
                if (fold, _key(params)) in done:
                    continue
                if args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes:
                    out_of_time = True
                    break
                est = clone(base).set_params(**params)
                wall, cpu = time.perf_counter(), time.process_time()
                est.fit([images[i] for i in train] + list(pool), [masks[i] for i in train] + blank)
                fit_seconds, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
                miou = est.score([images[i] for i in test], [masks[i] for i in test]) * 100
                payload["runs"].append({
                    "fold": fold, "label": label, "key": _key(params), "params": params, "miou": miou,
                    "validation_images": [int(i) for i in test], "n_pseudo_pixels": est.n_pseudo_pixels_,
                    "n_unlabelled_pixels": est.n_unlabelled_pixels_,
                    "uncertainty_thresholds": est.uncertainty_thresholds_,
                    "n_training_pixels": int(est.segmenter_[-1].n_training_pixels_),
                    "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu,
                    "load_average_after": machine()["load_average_1min"]})
                print(f"fold {fold} {label}: mIoU {miou:.1f}  fit {fit_seconds:.0f} s ({fit_cpu:.0f} CPU s)", flush=True)
                write_json(name, payload, path)
            if out_of_time:
                print("--max-minutes reached; rerun to resume")
                break
        folds = list(range(args.folds))
        payload["cv"] = _table(payload, candidates, folds)
        if len(payload["cv"]) == len(candidates):
            chosen, best, diff, se = _choose(payload["cv"])
            payload["chosen"] = {"label": chosen["label"], "params": chosen["params"], "cv_miou": chosen["cv_miou"],
                                 "best_self_training": best["label"], "paired_cv_gain": diff, "paired_cv_gain_se": se,
                                 "worth_it": chosen is best, "rule": CHOICE_RULE}
            if args.score_test:
                test_images = test_masks = None
                to_score = [("test", chosen), ("test_baseline", payload["cv"][0])]
                if chosen is not best:
                    to_score.append(("test_best_self_training", best))
                for key, row in to_score:
                    if key in payload:
                        continue
                    if args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes:
                        print("--max-minutes reached before the test scores; rerun to resume")
                        break
                    if key == "test_baseline" and chosen["params"]["n_rounds"] == 0:
                        payload[key] = {"same_as": "test"}
                        continue
                    if test_images is None:
                        test_images, test_masks, _ = _load(args.dataset, "test", None)
                    est = clone(base).set_params(**row["params"])
                    wall, cpu = time.perf_counter(), time.process_time()
                    est.fit(all_images, list(masks) + blank)
                    fit_seconds, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
                    payload[key] = {"label": row["label"], "params": row["params"], "n_images": len(test_images),
                                    "miou": est.score(test_images, test_masks) * 100, "fit_seconds": fit_seconds,
                                    "fit_cpu_seconds": fit_cpu, "n_pseudo_pixels": est.n_pseudo_pixels_,
                                    "load_average_after": machine()["load_average_1min"], "seeds": 1,
                                    "note": "fitted on the n labelled and the unlabelled images, scored once on the "
                                            "test split after the CV choice"
                                            + ("; for the record, chooses nothing" if key.endswith("training") else "")}
                    write_json(name, payload, path)
        path = write_json(name, payload, path)
    print(f"{'candidate':22s} {'CV mIoU':>8s} {'± folds':>8s} {'fit s':>7s} {'CPU s':>7s}")
    for row in payload["cv"]:
        print(f"{row['label']:22s} {row['cv_miou']:8.1f} {row['cv_miou_std_over_folds']:8.1f} "
              f"{row['fit_seconds_mean']:7.0f} {row['fit_cpu_seconds_mean']:7.0f}")
    if "chosen" in payload:
        c = payload["chosen"]
        print(f"chosen: {c['label']} (best self-training {c['best_self_training']}: {c['paired_cv_gain']:+.2f} "
              f"± {c['paired_cv_gain_se']:.2f} SE over rounds 0)")
    for key in ("test", "test_baseline", "test_best_self_training"):
        if key in payload and "miou" in payload[key]:
            print(f"{key}: {payload[key]['label']} {payload[key]['miou']:.1f}")
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
