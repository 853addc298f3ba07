"""Weizmann horse segmentation: the bundled DDPM's features vs scikit-image trainable segmentation.

Test split (100 images, original sizes), n = 5, 10, 20 labelled images (the first n of
``labeled_pool``), 3 seeds each, both methods in the same run::

    python benchmarks/weizmann.py [--quick] [--model DIR] [--max-pixels-per-image N]

The DDPM classifier refines its probabilities with the package's default guided filter
(``make_segmenter``'s; ``--refine none`` for the plain majority vote of earlier records).
The seeds vary the MLP ensemble's (and the forest's) randomness and the pixels sampled; the
labelled images are the fixed first n, as the data's README prescribes.
"""

import time

import numpy as np

import _common
from _baselines import SkimageSegmenter


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--model", default=None, help="backbone (default: the bundled horse DDPM)")
    p.add_argument("--n-labeled", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--seeds", type=int, default=None, help="seeds per n (default: 3; 1 with --quick)")
    p.add_argument("--steps", type=int, nargs="+", default=[50, 150, 250])
    p.add_argument("--blocks", type=int, nargs="+", default=None, help="default: the transformer's 'auto'")
    p.add_argument(
        "--max-pixels-per-image",
        type=int,
        default=1000,
        help="training pixels sampled per image for the MLP ensemble (CPU budget; the paper uses all)",
    )
    p.add_argument("--n-estimators", type=int, default=10)
    p.add_argument("--methods", nargs="+", default=["ddpm", "skimage"], choices=["ddpm", "ddpm-large-batch", "skimage"],
                   help="ddpm-large-batch: batch 2048 with the classifier's 'auto' large-batch rule for lr, "
                        "patience and min_epochs (sklearn_ddpm/ensemble/_schedule.py)")
    p.add_argument("--refine", choices=["guided", "none"], default="guided",
                   help="refinement of the ensemble's probabilities (default: the package's, make_segmenter's "
                        "guided filter; none: the members' majority vote, as before 2026-11-30)")
    p.add_argument("--rf-pixels-per-image", type=int, default=5000, help="pixels per image for the random forest")
    args = p.parse_args(argv)
    args.seeds = args.seeds if args.seeds or args.quick else 3
    device, note = _common.resolve_device(args.device)
    device = device or "cpu"
    n_test = 100
    if args.quick:
        args.n_labeled, n_test, args.n_estimators = [2], 3, 2
        args.seeds = args.seeds or 1
        args.max_pixels_per_image, args.rf_pixels_per_image = 300, 300

    from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, miou_score
    from sklearn_ddpm.postprocessing import GuidedFilter

    with _common.torch_threads(args.threads):
        pool, pool_masks, source = _common.horse_data("labeled_pool", max(args.n_labeled))
        test, test_masks, test_source = _common.horse_data("test", n_test)
        transformer = DDPMFeatureTransformer(
            args.model,
            blocks=tuple(args.blocks) if args.blocks else "auto",
            steps=tuple(args.steps),
            device=device,
            memory=None,
        )
        with _common.stopwatch(device) as t_extract:
            transformer.fit(pool)
            pool_features = transformer.transform(pool)
            test_features = transformer.transform(test)
        rows = []
        for n in args.n_labeled:
            for method in args.methods:
                scores, seconds = [], []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    if method.startswith("ddpm"):
                        batch = 2048 if method == "ddpm-large-batch" else 64
                        clf = MLPEnsembleClassifier(
                            n_estimators=args.n_estimators,
                            random_state=seed,
                            device=device,
                            max_pixels_per_image=args.max_pixels_per_image,
                            batch_size=batch,
                            refine=GuidedFilter() if args.refine == "guided" else None,
                        )
                        clf.fit(pool_features[:n], pool_masks[:n])
                        pred = clf.predict(test_features)
                    else:
                        seg = SkimageSegmenter(pixels_per_image=args.rf_pixels_per_image, random_state=seed)
                        pred = seg.fit(pool[:n], pool_masks[:n]).predict(test)
                    seconds.append(time.perf_counter() - start)
                    scores.append(100 * miou_score(test_masks, pred))
                rows.append(
                    {
                        "method": method,
                        "n_labeled": n,
                        "miou_mean": _common.mean_sample_std(scores)[0],
                        "miou_std": _common.mean_sample_std(scores)[1],
                        "scores": scores,
                        "seconds_per_fit_and_predict": float(np.mean(seconds)),
                    }
                )
                print(
                    f"n={n:>2} {method:>7}: {_common.format_mean_std(scores)} mIoU "
                    f"({np.mean(seconds):.0f} s per fit+predict)",
                    flush=True,
                )
    backbone = transformer.backbone_
    payload = {
        "data": {"train": source, "test": test_source},
        "backbone": repr(backbone),
        "blocks": transformer.blocks_,
        "steps": transformer.steps_,
        "n_features": transformer.n_features_out_,
        "extract_seconds_all_images": t_extract["seconds"],
        "max_pixels_per_image": args.max_pixels_per_image,
        "rf_pixels_per_image": args.rf_pixels_per_image,
        "n_estimators": args.n_estimators,
        "refine": repr(GuidedFilter()) if args.refine == "guided" else None,
        "device": device,
        "gpu_note": note,
        "miou_std": _common.STD_NOTE,
        "rows": rows,
    }
    path = _common.write_json("weizmann" + ("_quick" if args.quick else ""), payload, args.out)
    for row in rows:
        row["mIoU"] = _common.format_mean_std(row["scores"])
    _common.print_table(
        rows,
        ["n_labeled", "method", "mIoU", "seconds_per_fit_and_predict"],
        title=f"Weizmann horse test split ({test_source}), {backbone!r}",
    )
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
