"""Weizmann levers: image-guided refinement, test-time flip averaging and the large-batch rule.

One run, one feature extraction for the test fits (the labelled pool, the test split and its
mirror images) and the CV's own (the pool and its mirrors), the bundled DDPM, n labelled images
(the first n of ``labeled_pool``)::

    python benchmarks/weizmann_levers.py [--quick] [--n-labeled 20] [--seeds 3] [--folds 4]

1. **Choice by cross-validation on labeled_pool only**, through
   :func:`sklearn_ddpm.model_selection.select_segmenter` (one stage, every lever a candidate):
   ``GroupKFold`` over the n images (each image its own group), the classifier of the test fits
   (batch 64, raw features) fitted on the other folds and every lever scored on the held-out
   images — the baseline (majority vote of the members, ``clf__voting="hard"``), "soft" (argmax
   of the mean probability), "flip" (``features__flip_tta=True``: every member's probabilities
   averaged with those of the mirror image, then the vote), and the guided filter on the mean
   probability (of the image, or flip-averaged; ``clf__refine=GuidedFilter(radius, eps)``) over a
   grid of ``radius`` x ``eps``. The filter's parameters and each lever's on/off are chosen by
   the mean CV mIoU ("soft" is scored, not chosen, as before).
2. **The test split, scored once** with the chosen settings, for ``--seeds`` seeds; in the same
   fits, the default batch (64) against ``--large-batch`` with the package's "auto" rule
   (``sklearn_ddpm.ensemble._schedule``).

The record holds the CV scores that made each choice and the test scores (mean ± sample std).

Every lever is a prediction-time parameter (the estimators list them in ``_prediction_params``),
so ``select_segmenter`` fits one ensemble per fold and scores the 27 levers of the default grid
(3 + 2 x 4 radii x 3 eps) on copies of it: 4 fits, not 108 (``cv.selection[*].fits`` in the
record). Its features come from single-image passes through its own activation cache (the test
fits below use this script's batched extraction).
"""

import time

import numpy as np

import _common


def _member_outputs(clf, features, mirrored):
    """Per image: members' probabilities reduced to the label maps and mean probabilities of every lever.

    Each image's member probabilities are computed once (the expensive part) and reduced here;
    ``clf._member_probabilities`` is the classifier's own per-image pass, so the levers see the
    numbers the package's ``predict`` and ``predict_proba`` see.
    """
    import torch

    from sklearn_ddpm.ensemble._pixels import PixelTable
    from sklearn_ddpm.postprocessing import average_mirrored

    table, table_mirrored = PixelTable.from_input(features), PixelTable.from_input(mirrored)
    n_classes = len(clf.classes_)
    out = []
    for i in range(len(table)):
        height, width = (int(v) for v in table.sizes[i])
        p = clf._member_probabilities(table, i)
        p_flip = average_mirrored(p, clf._member_probabilities(table_mirrored, i), width)
        with torch.inference_mode():
            out.append({
                "baseline": clf._vote(p, n_classes).numpy().reshape(height, width),
                "flip": clf._vote(p_flip, n_classes).numpy().reshape(height, width),
                "mean": p.mean(1).numpy().reshape(height, width, -1),
                "mean_flip": p_flip.mean(1).numpy().reshape(height, width, -1),
            })
    return out


def _score_levers(outputs, masks, classes):
    """mIoU (×100) of the vote, the soft vote and flip averaging on these images (the test split)."""
    from sklearn_ddpm import miou_score

    def miou(labels):
        return 100 * miou_score(masks, [classes[lab] for lab in labels])

    return {
        "baseline": miou([o["baseline"] for o in outputs]),
        "soft": miou([o["mean"].argmax(-1) for o in outputs]),
        "flip": miou([o["flip"] for o in outputs]),
    }


def _choose(cv_mean, grid):
    """The settings the CV picked: the best (radius, eps) per guided lever, and each lever on/off."""
    choice = {}
    for name in ("guided", "flip+guided"):
        best = max(grid, key=lambda g: cv_mean[f"{name} r={g[0]} eps={g[1]:g}"])
        choice[name] = {"radius": best[0], "eps": best[1], "cv_miou": cv_mean[f"{name} r={best[0]} eps={best[1]:g}"]}
    candidates = {
        "baseline": cv_mean["baseline"],
        "flip": cv_mean["flip"],
        "guided": choice["guided"]["cv_miou"],
        "flip+guided": choice["flip+guided"]["cv_miou"],
    }
    choice["winner"] = max(candidates, key=candidates.get)
    choice["candidates_cv_miou"] = candidates
    return choice


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--model", default=None, help="backbone (default: the bundled horse DDPM)")
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3, help="seeds of the test-split fits")
    p.add_argument("--cv-seeds", type=int, default=1, help="seeds of the cross-validation fits")
    p.add_argument("--folds", type=int, default=4, help="GroupKFold splits of the labelled images")
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--max-pixels-per-image", type=int, default=1000,
                   help="training pixels per image (CPU budget, as weizmann.py; the paper uses all)")
    p.add_argument("--n-estimators", type=int, default=10)
    p.add_argument("--large-batch", type=int, default=2048, help="batch size of the large-batch fits")
    p.add_argument("--large-lr", type=float, default=None, help="lr of the large-batch fits (default: 'auto')")
    p.add_argument("--large-min-epochs", type=int, default=None,
                   help="min_epochs of the large-batch fits (default: 'auto')")
    p.add_argument("--part", choices=["all", "levers", "large-batch"], default="all",
                   help="levers: CV choice and test scores of the post-processing levers; large-batch: the "
                        "default batch against --large-batch on the test split (no CV, no mirrors); the two "
                        "parts can run as separate processes, each writing its own record")
    p.add_argument("--radii", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--eps", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    args = p.parse_args(argv)
    device, note = _common.resolve_device(args.device)
    device = device or "cpu"
    if args.quick:
        args.n_labeled, args.seeds, args.folds, args.n_test, args.n_estimators = 4, 1, 2, 2, 2
        args.max_pixels_per_image, args.large_batch, args.radii, args.eps = 200, 256, [2], [1e-2]
    grid = [(r, e) for r in args.radii for e in args.eps]
    levers, large_batch = args.part in ("all", "levers"), args.part in ("all", "large-batch")
    name = {"all": "weizmann_levers", "levers": "weizmann_levers", "large-batch": "weizmann_large_batch_rule"}[args.part]
    name += "_quick" if args.quick else f"_n{args.n_labeled}"

    from sklearn_ddpm import ActivationCache, DDPMFeatureTransformer, MLPEnsembleClassifier, miou_score
    from sklearn_ddpm.postprocessing import GuidedFilter

    def classifier(seed, **kw):
        return MLPEnsembleClassifier(n_estimators=args.n_estimators, random_state=seed, device=device,
                                     max_pixels_per_image=args.max_pixels_per_image, **kw)

    payload = {"settings": {k: v for k, v in vars(args).items() if k not in ("out",)}, "device": device,
               "gpu_note": note, "miou_std": _common.STD_NOTE}

    def save():
        return _common.write_json(name, payload, args.out, device=device)

    with _common.torch_threads(args.threads):
        size = 48 if args.quick else None  # quick: small images, seconds not minutes
        pool, pool_masks, source = _common.horse_data("labeled_pool", args.n_labeled, size)
        test, test_masks, test_source = _common.horse_data("test", args.n_test, size)
        transformer = DDPMFeatureTransformer(args.model, memory=ActivationCache(), device=device).fit(pool)
        with _common.stopwatch(device) as t_extract:
            pool_f, test_f = transformer.transform(pool), transformer.transform(test)
            if levers:  # the CV's pool mirrors are select_segmenter's (flip_tta candidates)
                test_fm = transformer.transform([im[:, ::-1] for im in test])
        payload.update({
            "data": {"train": source, "test": test_source},
            "backbone": repr(transformer.backbone_),
            "blocks": transformer.blocks_,
            "steps": transformer.steps_,
            "extract_seconds_images_and_mirrors": t_extract["seconds"],
            "extract_note": "labeled_pool, test and the test mirrors; the CV extracts the pool and its mirrors "
                            "itself (select_segmenter's cache, single-image passes)",
        })
        print(f"features: {t_extract['seconds']:.0f} s", flush=True)
        if levers:
            choice, chosen = _cross_validate(args, payload, save, transformer, device, pool, pool_masks, grid)

        # 2. the test split, scored once with the chosen settings
        per_seed = []
        payload["test"] = {"per_seed": per_seed}
        for seed in range(args.seeds):
            row = {"seed": seed}
            start = time.perf_counter()
            clf = classifier(seed).fit(pool_f, pool_masks)
            row["fit_seconds_batch_default"] = time.perf_counter() - start
            row["stop_epochs_batch_default"] = clf.stop_epochs_
            if levers:
                outputs = _member_outputs(clf, test_f, test_fm)
                scores = _score_levers(outputs, test_masks, clf.classes_)
                for (radius, eps), lever, source in zip(chosen, ("guided", "flip+guided"), ("mean", "mean_flip")):
                    refine = GuidedFilter(radius=radius, eps=eps).refine
                    labels = [clf.classes_[refine(o[source], im).argmax(-1)] for o, im in zip(outputs, test)]
                    scores[lever] = 100 * miou_score(test_masks, labels)
                del outputs
            else:
                scores = {"baseline": 100 * miou_score(test_masks, clf.predict(test_f))}
            row["scores"] = scores
            if large_batch:
                start = time.perf_counter()
                large = classifier(seed, batch_size=args.large_batch, lr=args.large_lr or "auto",
                                   min_epochs="auto" if args.large_min_epochs is None else args.large_min_epochs)
                large.fit(pool_f, pool_masks)
                row["fit_seconds_large_batch"] = time.perf_counter() - start
                row["large_batch_schedule"] = {"lr": large.lr_, "patience": large.patience_,
                                               "min_epochs": large.min_epochs_}
                row["stop_epochs_large_batch"] = large.stop_epochs_
                row["scores"]["large_batch"] = 100 * miou_score(test_masks, large.predict(test_f))
            per_seed.append(row)
            summary = {k: _common.mean_sample_std([r["scores"][k] for r in per_seed]) for k in row["scores"]}
            payload["test"]["summary"] = {k: {"mean": m, "std": s} for k, (m, s) in summary.items()}
            save()
            print(f"test seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in row["scores"].items()), flush=True)
    cv_scores = payload["cv"]["choice"]["candidates_cv_miou"] if levers else {}
    rows = [{"lever": k, "cv_miou": cv_scores.get(k),
             "test_miou": _common.format_mean_std([r["scores"][k] for r in per_seed], 2)}
            for k in per_seed[0]["scores"]]
    _common.print_table(rows, ["lever", "cv_miou", "test_miou"],
                        title=f"Weizmann n={args.n_labeled}, {args.seeds} seeds"
                              + (f"; chosen by CV: {payload['cv']['choice']['winner']}" if levers else ""))
    path = save()
    print(f"wrote {path}")
    return payload


def _lever_name(params):
    """The record's name of a candidate (a key of ``cv.mean_miou``)."""
    flip, refine = params.get("features__flip_tta", False), params.get("clf__refine")
    if refine is not None:
        return f"{'flip+guided' if flip else 'guided'} r={refine.radius} eps={refine.eps:g}"
    if flip:
        return "flip"
    return "baseline" if params.get("clf__voting", "hard") == "hard" else "soft"


def _lever_stage(grid):
    """The levers as one stage of grids: vote or soft, flip with the vote, guided with or without flip."""
    from sklearn_ddpm.postprocessing import GuidedFilter

    return [{"features__flip_tta": [False], "clf__voting": ["hard", "soft"]},
            {"features__flip_tta": [True], "clf__voting": ["hard"]},
            {"features__flip_tta": [False, True],
             "clf__refine": [GuidedFilter(radius=radius, eps=eps) for radius, eps in grid]}]


def _cross_validate(args, payload, save, transformer, device, pool, pool_masks, grid):
    """GroupKFold over the labelled images through select_segmenter: every lever's CV mIoU, and the choice."""
    from sklearn.model_selection import GroupKFold

    from sklearn_ddpm.model_selection import select_segmenter

    folds, selections = [], []
    groups = np.arange(len(pool))
    splits = list(GroupKFold(n_splits=args.folds).split(groups, groups=groups))
    # The start is the vote without refinement (a keyword would fix refine: the stage could not vary it).
    search = {"start": {"clf__refine": None}, "stages": [_lever_stage(grid)]}
    for seed in range(args.cv_seeds):
        # The classifier of the test fits (MLPEnsembleClassifier's batch 64 and raw features, this
        # seed), the transformer's noise seed (0) as in the test fits.
        result = select_segmenter(
            pool, pool_masks, model=transformer.backbone_, search=search, budget=None,
            cv=GroupKFold(n_splits=args.folds), groups=groups, random_state=transformer.random_state,
            progress=False, refit=False, device=device, n_estimators=args.n_estimators,
            max_pixels_per_image=args.max_pixels_per_image, mlp_batch_size=64, standardize=False,
            clf__random_state=seed)
        table = result.cv_results_
        names = [_lever_name(p) for p in table["params"]]
        for k, (_, held) in enumerate(splits):
            scores = {name: 100 * table[f"split{k}_test_score"][i] for i, name in enumerate(names)}
            folds.append({"seed": seed, "fold": k, "held_out": held.tolist(), "scores": scores})
            print(f"cv seed {seed} fold {k}: baseline {scores['baseline']:.1f}, flip {scores['flip']:.1f}", flush=True)
        selections.append(result.to_dict())
        print(f"cv seed {seed}: {result.fits_['fitted']} fits for {len(names)} levers x {len(splits)} folds "
              f"({result.seconds_['search']:.0f} s)", flush=True)
    cv_mean = {key: float(np.mean([f["scores"][key] for f in folds])) for key in folds[0]["scores"]}
    choice = _choose(cv_mean, grid)
    payload["cv"] = {"folds": folds, "mean_miou": cv_mean, "choice": choice, "selection": selections}
    save()
    print(f"CV choice: {choice['winner']}; {choice['candidates_cv_miou']}", flush=True)

    chosen = [(choice[k]["radius"], choice[k]["eps"]) for k in ("guided", "flip+guided")]
    return choice, chosen


if __name__ == "__main__":
    main()
