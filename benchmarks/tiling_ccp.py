"""What tiles buy on CCP: the bundled 64² input vs tiles at 2x and 4x the model pixels, CV-only protocol.

CCP photos are about 340 x 512 (174,000 pixels). Untiled, each is resized to the bundled horse
DDPM's 64² input (4,096 model pixels). Tiled (``tile="auto"``: 64² tiles, overlap 16), the model
grid has ``--factors`` times as many model pixels: ``scale = sqrt(photo pixels / (factor x 4,096))``
image pixels per model pixel (rounded to 0.01).

Protocol (the project's CV-only rule): the setting is chosen by ``GroupKFold(4)`` over the first
20 photos of ``labeled_pool`` (one group per photo; coarse masks, 11 classes), scored by the
pipeline's mIoU; the ``test`` photos are scored once, with the chosen setting (and, as the
reference it is compared with, the untiled setting), for ``--seeds`` classifier seeds. Nothing is
chosen by a test score. The backbone is the bundled horse DDPM (no CCP-trained model is bundled):
what is measured is what tiling changes, not the best CCP score.

The classifier: ``make_segmenter`` (guided filter) with ``--n-estimators`` members and
``--max-pixels-per-image`` labelled pixels per photo. Every finished CV fold and test seed is
written to the record at once; ``--resume`` skips what the record already holds, and
``--max-minutes`` stops cleanly between units (rerun with ``--resume`` to go on).

Examples
--------
    python benchmarks/tiling_ccp.py --threads 1 --max-minutes 60 --resume
    python benchmarks/tiling_ccp.py --quick
"""

import json
import math
import time

import numpy as np

import _common
import ccp

NAME = "tiling_ccp"
BUNDLED_INPUT = 64


def candidates(factors, photo_pixels):
    out = {"untiled (64² input)": {"features__tile": None, "features__scale": 1.0}}
    for factor in factors:
        scale = round(math.sqrt(photo_pixels / (factor * BUNDLED_INPUT**2)), 2)
        out[f"tiled, {factor}x model pixels (scale {scale})"] = {"features__tile": "auto", "features__scale": scale}
    return out


def make_pipeline(params, args, seed, memory):
    from sklearn_ddpm import make_segmenter

    pipe = make_segmenter(None, n_estimators=args.n_estimators, max_pixels_per_image=args.max_pixels_per_image,
                          n_classes=11, memory=memory, random_state=seed,
                          **({"max_epochs": 2} if args.quick else {}))
    return pipe.set_params(**params)


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--factors", type=float, nargs="+", default=[2.0, 4.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-estimators", type=int, default=3)
    p.add_argument("--max-pixels-per-image", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=None, help="test photos (default: all 130)")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.n_labeled, args.folds, args.seeds, args.n_test, args.n_estimators = 4, 2, [0], 2, 1
    from sklearn.model_selection import GroupKFold

    from sklearn_ddpm import ActivationCache

    out = args.out or _common.RESULTS_DIR / f"{NAME}.json"
    record = json.loads(out.read_text()) if args.resume and out.is_file() else {}
    cv = record.get("cv", {})
    test = record.get("test", {})
    started = time.perf_counter()

    def out_of_time():
        return args.max_minutes is not None and time.perf_counter() - started > 60 * args.max_minutes

    def save(status):
        payload = {
            "question": "CCP mIoU: bundled 64² input vs tiles at 2x/4x model pixels, setting chosen by GroupKFold CV",
            "protocol": (f"GroupKFold({args.folds}) over labeled_pool[:{args.n_labeled}] (one group per photo, coarse "
                         "masks); the setting with the best mean CV mIoU is chosen; test photos scored once with "
                         "the chosen setting and with the untiled reference, per seed; no choice looks at test"),
            "backbone": "bundled horse DDPM (64² input); not trained on CCP",
            "settings": {"n_estimators": args.n_estimators, "max_pixels_per_image": args.max_pixels_per_image,
                         "refine": "guided (make_segmenter default)", "blocks": "auto", "steps": [50, 150, 250],
                         "tile_overlap": "tile // 4 = 16", "threads": args.threads, "quick": args.quick},
            "candidates": cands,
            "cv": cv,
            "cv_mean": {name: float(np.mean(list(folds.values()))) for name, folds in cv.items()
                        if len(folds) == args.folds},
            "chosen": chosen,
            "test": test,
            "test_summary": {name: {"miou_mean": float(np.mean(list(s.values()))),
                                    "miou_std_ddof1": float(np.std(list(s.values()), ddof=1)) if len(s) > 1 else None,
                                    "n_seeds": len(s)} for name, s in test.items()},
            "status": status,
        }
        _common.write_json(NAME, payload, out)

    with _common.torch_threads(args.threads):
        pool, test_data, _, source = ccp.load_data(args.n_labeled, args.n_test, args.quick)
        images, masks = pool[0], pool[1]
        photo_pixels = float(np.mean([im.shape[0] * im.shape[1] for im in images]))
        cands = candidates(args.factors, photo_pixels)
        chosen = record.get("chosen")
        memory = ActivationCache(max_bytes=4 * 2**30)
        groups = np.arange(len(images))
        splits = list(GroupKFold(args.folds).split(images, groups=groups))
        for name, params in cands.items():
            for k, (train, val) in enumerate(splits):
                if str(k) in cv.get(name, {}):
                    continue
                if out_of_time():
                    save("stopped by --max-minutes during CV; rerun with --resume")
                    return out
                pipe = make_pipeline(params, args, 0, memory)
                pipe.fit([images[i] for i in train], [masks[i] for i in train])
                cv.setdefault(name, {})[str(k)] = 100 * float(pipe.score([images[i] for i in val],
                                                                         [masks[i] for i in val]))
                print(f"cv {name} fold {k}: {cv[name][str(k)]:.1f}", flush=True)
                save("CV running")
        means = {name: np.mean(list(folds.values())) for name, folds in cv.items()}
        chosen = max(means, key=means.get)
        untiled = next(iter(cands))
        test_images, test_masks = test_data[0], test_data[1]
        for name in dict.fromkeys([chosen, untiled]):
            for seed in args.seeds:
                if str(seed) in test.get(name, {}):
                    continue
                if out_of_time():
                    save("stopped by --max-minutes during the test scoring; rerun with --resume")
                    return out
                pipe = make_pipeline(cands[name], args, seed, None)
                pipe.fit(images, masks)
                test.setdefault(name, {})[str(seed)] = 100 * float(pipe.score(test_images, test_masks))
                print(f"test {name} seed {seed}: {test[name][str(seed)]:.1f}", flush=True)
                save("test running")
        save("done")
    summary = [{"setting": name, "cv mIoU": round(float(np.mean(list(cv[name].values()))), 1),
                "test mIoU": _common.format_mean_std(list(test[name].values())) if name in test else "-"}
               for name in cands]
    _common.print_table(summary, ["setting", "cv mIoU", "test mIoU"], title=f"{NAME} ({source}) -> {out}")
    return out


if __name__ == "__main__":
    main()
