"""Clothing parsing on CCP: the package's pipeline vs scikit-image trainable segmentation.

Both methods learn from the same first ``n`` images of the ``labeled_pool`` split (n = 10, 20, 50)
and are scored on the ``test`` split at the images' original size (323-351 x 512 px), on the
coarse (11 classes) and the fine (59 classes) masks, for several seeds:

- ``ddpm``: ``DDPMFeatureTransformer`` (the given DDPM, chosen blocks and steps) then
  ``MLPEnsembleClassifier``; the seed drives the members' inits, data order and pixel sampling.
- ``skimage``: ``skimage.feature.multiscale_basic_features`` (intensity, edges, texture, sigma
  1-16, per RGB channel) and ``RandomForestClassifier(100 trees, max_depth=10)`` fitted on 5,000
  randomly sampled pixels per image (the scikit-image "trainable segmentation" recipe); the seed
  drives the pixel sample and the forest.

Metrics are accumulated over all test pixels of all test images: mIoU over the classes present in
the truth or the prediction (``sklearn_ddpm.miou_score``'s rule) and pixel accuracy. The record
also holds each configuration's per-class IoU (mean over seeds) and timings.

The test images are streamed one at a time: each image's compact features are computed once and
every fitted model predicts on them.

Examples
--------
    python benchmarks/ccp.py --model .cache/ccp_ddpm_model           # full protocol
    python benchmarks/ccp.py --model .cache/ccp_ddpm_model --n-test 10 --n-estimators 3
    python benchmarks/ccp.py --quick                                  # smoke run, seconds
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np

import _common
from _baselines import skimage_features
from sklearn_ddpm.metrics import confusion_matrix_images, iou_from_confusion

NAME = "ccp"
CCP_DIR = _common.DATA_DIR / "ccp_clothing"
DEFAULT_MODEL = _common.REPO_ROOT / ".cache" / "ccp_ddpm_model"
QUICK = {"n_labeled": [2, 3], "seeds": [0, 1], "n_test": 2, "n_estimators": 2, "max_epochs": 2,
         "max_pixels_per_image": 200, "rf_pixels_per_image": 200, "model": "random", "blocks": [2, 4],
         "steps": [50]}


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL),
                   help="DDPM folder (train-ddpm output or export); 'random' = random-init preset-64 UNet "
                        f"(default: {DEFAULT_MODEL.relative_to(_common.REPO_ROOT)})")
    p.add_argument("--blocks", type=int, nargs="+", default=[3, 6, 9], help="decoder blocks (default: 3 6 9)")
    p.add_argument("--steps", type=int, nargs="+", default=[50, 150, 250], help="timesteps (default: 50 150 250)")
    p.add_argument("--n-noise-samples", type=int, default=1,
                   help="average the activations over this many noise draws (default: 1, the paper's)")
    p.add_argument("--image-size", type=int, nargs="+", default=None,
                   help="model input size, one value or H W (default: the model's)")
    p.add_argument("--n-labeled", type=int, nargs="+", default=[10, 20, 50], help="training images (default: 10 20 50)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--tasks", nargs="+", choices=["coarse", "fine"], default=["coarse", "fine"])
    p.add_argument("--methods", nargs="+", choices=["ddpm", "skimage"], default=["ddpm", "skimage"])
    p.add_argument("--n-test", type=int, default=None, help="score the first N test images (default: all 130)")
    p.add_argument("--n-estimators", type=int, default=10, help="MLPs per ensemble (default: 10)")
    p.add_argument("--max-pixels-per-image", type=int, default=5000,
                   help="labelled pixels sampled per training image for the MLPs (default: 5000)")
    p.add_argument("--max-pixels-per-class", type=int, default=None,
                   help="at most this many pixels of each class per training image (default: no cap)")
    p.add_argument("--mlp-batch-size", type=int, default=64,
                   help="MLP batch size; lr = 1e-3 * sqrt(batch / 64) (default: 64)")
    p.add_argument("--max-epochs", type=int, default=100, help="MLP epochs at most (default: 100)")
    p.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    p.add_argument("--refine", choices=["guided", "none"], default="guided",
                   help="refinement of the ensemble's probabilities: guided = the package default "
                        "(make_segmenter's guided filter), none = the members' majority vote (records "
                        "before 2026-11-30)")
    p.add_argument("--standardize", action="store_true",
                   help="MLPEnsembleClassifier(standardize=True): per-channel standardized features")
    p.add_argument("--rf-pixels-per-image", type=int, default=5000,
                   help="pixels sampled per training image for the forest (default: 5000)")
    return p


def load_data(n_labeled, n_test, quick, with_test=True):
    """Labelled pool and test images with coarse and fine masks, plus the class names.

    ``quick`` shrinks every image 8x (a smoke run's "original size" is then that of the shrunk
    image); without the shared data folder, random images and masks stand in. ``with_test=False``
    reads no test photo (the test part is then None), for choices that must not see them.
    """
    from sklearn_ddpm.datasets import load_ccp_clothing

    if not (CCP_DIR / "splits.json").is_file():
        if not quick:
            raise FileNotFoundError(f"CCP data not found at {CCP_DIR}; only --quick runs without it.")
        rng = np.random.default_rng(0)

        def fake(n):
            images = list(rng.integers(0, 256, (n, 40, 28, 3), dtype=np.uint8))
            coarse = [np.repeat(rng.integers(0, 11, (10, 7)), 4, 0).repeat(4, 1).astype(np.uint8) for _ in range(n)]
            return images, coarse, [(c * 5).astype(np.uint8) for c in coarse]

        names = {"coarse": [f"c{k}" for k in range(11)], "fine": [f"f{k}" for k in range(59)]}
        return fake(n_labeled), (fake(n_test) if with_test else None), names, f"synthetic (no data at {CCP_DIR})"

    def split(name, n):
        coarse = load_ccp_clothing(CCP_DIR, split=name, coarse=True, n=n)
        fine = load_ccp_clothing(CCP_DIR, split=name, coarse=False, n=n)
        images, mc, mf = coarse.images, coarse.masks, fine.masks
        if quick:
            images = [im[::8, ::8].copy() for im in images]
            mc, mf = [m[::8, ::8].copy() for m in mc], [m[::8, ::8].copy() for m in mf]
        return (images, mc, mf), coarse.class_names, fine.class_names

    pool, coarse_names, fine_names = split("labeled_pool", n_labeled)
    names = {"coarse": coarse_names, "fine": fine_names}
    if not with_test:
        return pool, None, names, f"ccp_clothing labeled_pool[:{n_labeled}]"
    test, _, _ = split("test", n_test)
    return pool, test, names, f"ccp_clothing labeled_pool[:{n_labeled}], test[:{len(test[0])}]"


def load_model(model, quick):
    import torch
    from diffusers import UNet2DModel

    from sklearn_ddpm.backbone import tiny_unet
    from sklearn_ddpm.ddpm_training import get_preset

    if quick and model == "random":
        return tiny_unet(), "random-init tiny UNet"
    if model == "random":
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return UNet2DModel(**get_preset("64")["unet"], sample_size=64).eval(), "random-init preset-64 UNet"
    if not Path(model).exists():
        raise FileNotFoundError(
            f"--model {model} does not exist: train one first (examples/tutorial_ccp.py, step 1), or pass "
            "--model random for a random-init UNet.")
    return str(model), str(model)


def confusion(truth, pred, n_classes):
    return confusion_matrix_images([truth], [pred], ignore_index=None, n_classes=n_classes)


def scores(cm):
    """mIoU over the classes present in truth or prediction, pixel accuracy, per-class IoU (NaN: absent)."""
    iou = iou_from_confusion(cm)
    return float(np.nanmean(iou)), float(np.diag(cm).sum() / cm.sum()), iou


def fit_ddpm(args, model, pool, tasks, seeds, n_labeled, n_classes, timings):
    from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
    from sklearn_ddpm.postprocessing import GuidedFilter

    image_size = None if args.image_size is None else (
        args.image_size[0] if len(args.image_size) == 1 else tuple(args.image_size))
    transformer = DDPMFeatureTransformer(model, blocks=tuple(args.blocks), steps=tuple(args.steps),
                                         image_size=image_size, n_noise_samples=args.n_noise_samples,
                                         device=args.device, memory=None,
                                         progress=not args.quick).fit()
    start = time.perf_counter()
    pool_features = transformer.transform(pool[0])
    timings["ddpm_extract_pool_s"] = time.perf_counter() - start
    models = {}
    for task in tasks:
        masks = pool[1] if task == "coarse" else pool[2]
        for n in n_labeled:
            for seed in seeds:
                clf = MLPEnsembleClassifier(
                    n_estimators=args.n_estimators, batch_size=args.mlp_batch_size,
                    lr=1e-3 * (args.mlp_batch_size / 64) ** 0.5, max_epochs=args.max_epochs,
                    max_pixels_per_image=args.max_pixels_per_image,
                    max_pixels_per_class=args.max_pixels_per_class, device=args.device, n_classes=n_classes[task],
                    class_weight=None if args.class_weight == "none" else args.class_weight,
                    standardize=args.standardize, random_state=seed,
                    refine=GuidedFilter() if args.refine == "guided" else None)
                start = time.perf_counter()
                clf.fit(pool_features[:n], masks[:n])
                timings.setdefault("ddpm_fit_s", {})[f"{task}/n={n}/seed={seed}"] = time.perf_counter() - start
                models[("ddpm", task, n, seed)] = clf
                print(f"  ddpm {task} n={n} seed={seed}: fit {time.perf_counter() - start:.0f} s, "
                      f"{clf.n_training_pixels_} pixels, {len(clf.classes_)} classes", flush=True)
    return transformer, models


def fit_skimage(args, pool, tasks, seeds, n_labeled, timings):
    from sklearn.ensemble import RandomForestClassifier

    n_max = max(n_labeled)
    rngs = {seed: np.random.default_rng(seed) for seed in seeds}
    samples = {seed: [] for seed in seeds}  # per seed, per image: (features, coarse, fine)
    start = time.perf_counter()
    for image, coarse, fine in zip(pool[0][:n_max], pool[1][:n_max], pool[2][:n_max]):
        features = skimage_features(image)
        features = features.reshape(-1, features.shape[-1])
        labelled = np.flatnonzero(coarse.ravel() != 255)
        for seed in seeds:
            pick = rngs[seed].choice(labelled, min(args.rf_pixels_per_image, len(labelled)), replace=False)
            samples[seed].append((features[pick], coarse.ravel()[pick], fine.ravel()[pick]))
    timings["skimage_features_pool_s"] = time.perf_counter() - start
    models = {}
    for task in tasks:
        column = 1 if task == "coarse" else 2
        for n in n_labeled:
            for seed in seeds:
                X = np.concatenate([s[0] for s in samples[seed][:n]])
                y = np.concatenate([s[column] for s in samples[seed][:n]])
                forest = RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=1, random_state=seed)
                start = time.perf_counter()
                forest.fit(X, y)
                timings.setdefault("skimage_fit_s", {})[f"{task}/n={n}/seed={seed}"] = time.perf_counter() - start
                models[("skimage", task, n, seed)] = forest
                print(f"  skimage {task} n={n} seed={seed}: fit {time.perf_counter() - start:.0f} s, "
                      f"{len(y)} pixels", flush=True)
    return models


def evaluate(models, transformer, test, n_classes, quick):
    """Stream the test images; every model predicts each image once its features exist."""
    from tqdm.auto import tqdm

    cms = {key: np.zeros((n_classes[key[1]],) * 2, np.int64) for key in models}
    seconds = {"ddpm_features": 0.0, "ddpm_predict": 0.0, "skimage_features": 0.0, "skimage_predict": 0.0}
    has = {method for method, *_ in models}
    for image, coarse, fine in tqdm(list(zip(*test)), desc="test images", disable=quick):
        truth = {"coarse": coarse, "fine": fine}
        if "ddpm" in has:
            start = time.perf_counter()
            # Compact: each ensemble projects the native maps through its first layer before
            # upsampling, far cheaper than upsampling all D features once and sharing them.
            features = transformer.transform([image])
            seconds["ddpm_features"] += time.perf_counter() - start
        if "skimage" in has:
            start = time.perf_counter()
            flat = skimage_features(image)
            flat = flat.reshape(-1, flat.shape[-1])
            seconds["skimage_features"] += time.perf_counter() - start
        for key, model in models.items():
            method, task = key[0], key[1]
            start = time.perf_counter()
            if method == "ddpm":
                pred = np.asarray(model.predict(features))[0]
            else:
                pred = model.predict(flat).reshape(coarse.shape)
            seconds[f"{method}_predict"] += time.perf_counter() - start
            cms[key] += confusion(truth[task], pred, n_classes[task])
    return cms, seconds


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        # tiny settings (the tiny UNet's blocks, one step), except where the caller chose a value
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    args.device = device
    n_labeled = sorted(set(args.n_labeled))
    with _common.torch_threads(args.threads):
        start = time.perf_counter()
        pool, test, class_names, data = load_data(max(n_labeled), args.n_test, args.quick)
        if max(n_labeled) > len(pool[0]):
            raise ValueError(f"--n-labeled {max(n_labeled)} exceeds the {len(pool[0])} labelled images.")
        n_classes = {task: len(class_names[task]) for task in ("coarse", "fine")}
        timings = {"load_s": time.perf_counter() - start}
        models, transformer, model_name = {}, None, None
        if "ddpm" in args.methods:
            model, model_name = load_model(args.model, args.quick)
            transformer, fitted = fit_ddpm(args, model, pool, args.tasks, args.seeds, n_labeled, n_classes, timings)
            models.update(fitted)
        if "skimage" in args.methods:
            models.update(fit_skimage(args, pool, args.tasks, args.seeds, n_labeled, timings))
        cms, seconds = evaluate(models, transformer, test, n_classes, args.quick)
        timings.update({f"test_{k}_s": v for k, v in seconds.items()})
        timings["total_s"] = time.perf_counter() - start

    rows = []
    for method in args.methods:
        for task in args.tasks:
            for n in n_labeled:
                results = [scores(cms[(method, task, n, seed)]) for seed in args.seeds]
                miou = np.array([r[0] for r in results]) * 100
                acc = np.array([r[1] for r in results]) * 100
                with warnings.catch_warnings():  # a class absent from every seed's truth and prediction stays NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    iou = np.nanmean(np.stack([r[2] for r in results]), axis=0)
                rows.append({
                    "method": method, "task": task, "n_labeled": n,
                    "miou_mean": float(miou.mean()), "miou_std": _common.mean_sample_std(miou)[1],
                    "pixel_accuracy_mean": float(acc.mean()), "pixel_accuracy_std": _common.mean_sample_std(acc)[1],
                    "miou_per_seed": miou.tolist(), "pixel_accuracy_per_seed": acc.tolist(),
                    "per_class_iou": {class_names[task][k]: (None if np.isnan(v) else float(v) * 100)
                                      for k, v in enumerate(iou)},
                    "miou": _common.format_mean_std(miou),
                    "pixel_acc": _common.format_mean_std(acc),
                })
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    settings["model"] = model_name
    path = _common.write_json(NAME, {"data": data, "settings": settings, "n_test_images": len(test[0]),
                                     "timings": timings, "std": _common.STD_NOTE, "rows": rows}, args.out)
    _common.print_table(rows, ["method", "task", "n_labeled", "miou", "pixel_acc"],
                        title=f"CCP clothing, {len(test[0])} test images at original size, "
                              f"{len(args.seeds)} seeds (mean ± sample std, %)")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
