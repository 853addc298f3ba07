"""The ``fit``, ``predict`` and ``evaluate`` sub-commands: segmentation on the user's own folders.

``fit`` saves a scikit-learn :class:`~sklearn.pipeline.Pipeline` (``DDPMFeatureTransformer`` then
``MLPEnsembleClassifier``) with joblib, so the file is as usable from Python
(``joblib.load("seg.joblib").predict(images)``) as from the command line. The pipeline also
carries ``class_names_`` (list or None), ``versions_`` (package versions at fit time) and
``training_files_``.

Security: joblib (pickle) files execute code when they are loaded. Load only files you trust.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .backbone._cli import image_size_argument
from .utils._persistence import current_versions

SECURITY_NOTE = ("Security: a .joblib model file can execute code when it is loaded (it is a pickle); "
                 "only load files you trust.")

_FIT_EPILOG = """\
examples:
  # fit on a folder of photos and a folder of masks with the same file names (a.jpg <-> a.png)
  sklearn-ddpm fit photos/ masks/ --model runs/my_ddpm -o seg.joblib

  # the paper's blocks and steps, 10 MLPs, at most 5000 labelled pixels per image, named classes
  sklearn-ddpm fit photos/ masks/ --blocks 5 6 7 8 12 --steps 50 150 250 \\
      --n-estimators 10 --max-pixels-per-image 5000 --classes classes.txt -o seg.joblib

Masks hold class indices 0..K-1 (single-channel or palette PNG, or .npy); 255 marks unlabelled
pixels. A classes file (one name per line, or a JSON/YAML list) fixes K and names the classes.
Without --model the small horse DDPM bundled with the package is used.
"""

_PREDICT_EPILOG = f"""\
examples:
  # label masks (palette PNGs of class indices, at each image's original size)
  sklearn-ddpm predict seg.joblib new_photos/ -o predictions/

  # also colour overlays and uncertainty maps; skip images already done by an interrupted run
  sklearn-ddpm predict seg.joblib new_photos/ -o predictions/ --overlay --uncertainty --resume

Outputs: OUT_DIR/NAME.png (labels), OUT_DIR/overlay/NAME.png, OUT_DIR/uncertainty/NAME.png
(heat map) and NAME.npy (float32 Jensen-Shannon divergence of the ensemble). Every file is
written to a temporary name and renamed, so an interrupted run leaves no truncated file.

{SECURITY_NOTE}
"""

_EVALUATE_EPILOG = f"""\
examples:
  sklearn-ddpm evaluate seg.joblib test_photos/ test_masks/
  sklearn-ddpm evaluate seg.joblib test_photos/ test_masks/ --classes classes.txt

IoU of every class is accumulated over all images (pixels labelled 255 are not scored); mIoU is
the mean over the classes present in the masks or the predictions. Mask labels the model was not
fitted on are reported with a warning and count as errors (their IoU is 0).

{SECURITY_NOTE}
"""


# -- sub-command registration --------------------------------------------------------------------
def register(subparsers):
    """Add the ``fit``, ``predict`` and ``evaluate`` sub-commands to ``argparse`` sub-parsers."""
    fit = subparsers.add_parser(
        "fit", help="fit a segmenter on a folder of images and a folder of masks",
        description="Fit DDPM pixel features + an ensemble of pixel MLPs on images and their masks "
                    "(paired by file name) and save the fitted scikit-learn pipeline with joblib.",
        epilog=_FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of training images (any Pillow format)")
    fit.add_argument("mask_dir", metavar="MASK_DIR", help="folder of masks with the images' file names")
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="where to save the model (.joblib)")
    fit.add_argument("--model", default=None, metavar="BACKBONE",
                     help="diffusers model folder, guided-diffusion .pt or hub id (default: bundled horse DDPM)")
    fit.add_argument("--blocks", type=int, nargs="+", default=None, metavar="B",
                     help="decoder blocks to read (default: the paper's relative depths; see `sklearn-ddpm blocks`)")
    fit.add_argument("--steps", type=int, nargs="+", default=[50, 150, 250], metavar="T",
                     help="diffusion timesteps (default: 50 150 250)")
    fit.add_argument("--image-size", type=image_size_argument, metavar="N|HxW", default=None,
                     help="model input size, e.g. 128 or 192x128 for portrait photos (default: the model's)")
    fit.add_argument("--classes", default=None, metavar="FILE", help="class names: .txt (one per line), .json or .yaml")
    fit.add_argument("--n-estimators", type=int, metavar="N", default=10, help="MLPs in the ensemble (default: 10)")
    fit.add_argument("--max-epochs", type=int, metavar="N", default=100, help="epochs per MLP at most (default: 100)")
    fit.add_argument("--max-pixels-per-image", type=int, default=None, metavar="N",
                     help="sample at most N labelled pixels per image (default: all)")
    fit.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default: 0)")
    _common_arguments(fit, device_default="cpu")
    fit.set_defaults(func=_fit)

    predict = subparsers.add_parser(
        "predict", help="segment a folder of images with a fitted model",
        description="Predict label masks (PNG, original image sizes) for every image of IMAGE_DIR.",
        epilog=_PREDICT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("model_file", metavar="MODEL", help="a model saved by `sklearn-ddpm fit`")
    predict.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images")
    predict.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    predict.add_argument("--overlay", action="store_true", help="also write colour overlays")
    predict.add_argument("--uncertainty", action="store_true", help="also write ensemble uncertainty maps")
    predict.add_argument("--resume", action="store_true", help="skip images whose outputs all exist")
    predict.add_argument("--classes", default=None, metavar="FILE", help="class names for overlay legends "
                         "(default: those given at fit)")
    _common_arguments(predict, device_default=None)
    predict.set_defaults(func=_predict)

    evaluate = subparsers.add_parser(
        "evaluate", help="mIoU and per-class IoU of a fitted model on images with masks",
        description="Score a fitted model on IMAGE_DIR against the masks of MASK_DIR.",
        epilog=_EVALUATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("model_file", metavar="MODEL", help="a model saved by `sklearn-ddpm fit`")
    evaluate.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images")
    evaluate.add_argument("mask_dir", metavar="MASK_DIR", help="folder of masks with the images' file names")
    evaluate.add_argument("--classes", default=None, metavar="FILE",
                          help="class names (default: those given at fit); labels beyond them are an error")
    _common_arguments(evaluate, device_default=None)
    evaluate.set_defaults(func=_evaluate)
    return fit, predict, evaluate


def _common_arguments(parser, device_default):
    parser.add_argument("--device", default=device_default,
                        help="cpu, cuda or cuda:N (default: cpu)" if device_default else
                             "cpu, cuda or cuda:N (default: the device used at fit, or the CPU without CUDA)")
    parser.add_argument("--batch-size", type=int, metavar="N", default=8, help="images per UNet forward pass (default: 8)")
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)")
    parser.add_argument("--image-list", default=None, metavar="FILE",
                        help="use only the images named in FILE (one per line, with or without extension), "
                             "e.g. one split of a folder that holds several")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def _listed(args):
    """The names of ``--image-list`` (None without it); ``#`` starts a comment."""
    if args.image_list is None:
        return None
    path = Path(args.image_list)
    if not path.is_file():
        raise FileNotFoundError(f"--image-list file not found: {path}")
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"--image-list {path} names no image.")
    return names


# -- fit -------------------------------------------------------------------------------------------
def _fit(args):
    from sklearn.pipeline import Pipeline

    from .datasets._folders import load_image_folder
    from .ensemble import MLPEnsembleClassifier
    from .features import DDPMFeatureTransformer
    from .utils import resolve_device
    from .utils._atomic import atomic_joblib_dump, ensure_directory

    start = time.perf_counter()
    _check_positive(args, "batch_size", "n_estimators", "max_epochs", "max_pixels_per_image")
    resolve_device(args.device, fitting=True)  # fail before the slow part, not after it
    output = Path(args.output)
    ensure_directory(output.parent, "-o/--output folder")
    class_names = _read_classes(args.classes)
    if class_names is not None and len(class_names) < 2:
        raise ValueError(f"--classes {args.classes} names {len(class_names)} class; a segmenter needs at least two.")
    backbone = _load_backbone(args.model)
    data = load_image_folder(args.image_dir, args.mask_dir, class_names=class_names, progress=not args.quiet,
                             only=_listed(args))
    _check_labelled_classes(data)
    pipeline = Pipeline([
        ("features", DDPMFeatureTransformer(
            backbone, blocks=tuple(args.blocks) if args.blocks else "auto", steps=tuple(args.steps),
            image_size=args.image_size, batch_size=args.batch_size * len(args.steps), device=args.device, memory=None,
            random_state=args.seed, progress=not args.quiet)),
        ("clf", MLPEnsembleClassifier(
            n_estimators=args.n_estimators, max_epochs=args.max_epochs,
            max_pixels_per_image=args.max_pixels_per_image,
            n_classes=len(class_names) if class_names else None, device=args.device, random_state=args.seed)),
    ])
    if not args.quiet:
        print(f"Training {args.n_estimators} pixel MLPs on {len(data.images)} images ...", file=sys.stderr)
    pipeline.fit(data.images, data.masks)
    pipeline.class_names_ = class_names
    pipeline.versions_ = current_versions()
    pipeline.training_files_ = [p.name for p in data.image_paths]
    atomic_joblib_dump(pipeline, output)
    if not args.quiet:
        clf, features = pipeline[-1], pipeline[0]
        names = class_names or [str(c) for c in clf.classes_]
        print(f"Fitted on {len(data.images)} images, {clf.n_training_pixels_:,} labelled pixels, "
              f"{len(clf.classes_)} classes ({', '.join(names)}), blocks {list(features.blocks_)}, "
              f"steps {list(features.steps_)}, {features.n_features_out_} features per pixel, "
              f"in {time.perf_counter() - start:.0f} s.")
        print(f"Saved the model to {output}")
    return 0


def _load_backbone(model):
    """Load ``--model`` with errors that name the argument (corrupt or wrong-architecture files)."""
    from diffusers.utils import logging as diffusers_logging

    from .backbone import load_backbone

    # diffusers logs advice (e.g. "install accelerate") that is noise for a command-line user.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        backbone = load_backbone(model)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--model {model}: {exc}") from exc
    except Exception as exc:
        what = "the bundled backbone" if model is None else repr(str(model))
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--model {what} could not be loaded as a diffusion UNet "
                         f"({type(exc).__name__}: {first_line}). Is it a complete, uncorrupted model of "
                         "the architecture its config.json describes?") from exc
    finally:
        diffusers_logging.set_verbosity(verbosity)
    return backbone


def _check_labelled_classes(data):
    present = sorted({int(v) for m in data.masks for v in np.unique(m) if v != 255})
    if len(present) < 2:
        found = f"only class {present[0]}" if present else "no labelled pixel"
        raise ValueError(f"the masks of {len(data.masks)} training images hold {found} (255 = unlabelled); "
                         "a segmenter needs at least two classes among the labelled pixels.")


# -- predict ---------------------------------------------------------------------------------------
def _predict(args):
    from PIL import Image
    from tqdm.auto import tqdm

    from .datasets import read_image
    from .datasets._folders import list_images
    from .plotting import label_palette, overlay, uncertainty_to_color
    from .utils._atomic import atomic_save_image, atomic_save_npy, ensure_directory

    _check_positive(args, "batch_size")
    if args.uncertainty:
        try:
            import matplotlib  # noqa: F401  (colours the heat maps)
        except ImportError:
            raise RuntimeError("--uncertainty needs matplotlib for its heat maps: pip install 'sklearn-ddpm[plot]'.") from None
    pipeline = load_segmenter(args.model_file, device=args.device, batch_size=args.batch_size)
    # One bar over images; the extractor's own bar (switched on by `fit`) would nest inside it.
    pipeline[0].set_params(progress=False)
    class_names = _read_classes(args.classes) or getattr(pipeline, "class_names_", None)
    paths = list_images(args.image_dir, only=_listed(args))
    out = ensure_directory(args.output, "-o/--output folder")
    if args.overlay:
        ensure_directory(out / "overlay", "-o/--output folder")
    if args.uncertainty:
        ensure_directory(out / "uncertainty", "-o/--output folder")

    def outputs(path):
        files = [out / f"{path.stem}.png"]
        if args.overlay:
            files.append(out / "overlay" / f"{path.stem}.png")
        if args.uncertainty:
            files += [out / "uncertainty" / f"{path.stem}.png", out / "uncertainty" / f"{path.stem}.npy"]
        return files

    todo = [p for p in paths if not (args.resume and all(f.is_file() for f in outputs(p)))]
    skipped, failed, written = len(paths) - len(todo), [], 0
    features, clf = pipeline[:-1], pipeline[-1]
    palette = label_palette()
    bar = tqdm(total=len(todo), desc="predict", unit="img", disable=args.quiet or not todo)
    for start in range(0, len(todo), args.batch_size):
        batch, images = [], []
        for path in todo[start:start + args.batch_size]:
            try:
                images.append(read_image(path))
                batch.append(path)
            except (ValueError, OSError) as exc:
                failed.append(f"{path}: {exc}")
                bar.update(1)
        if not images:
            continue
        pixel_features = features.transform(images)
        labels = _as_list(clf.predict(pixel_features))
        maps = _as_list(clf.predict_uncertainty(pixel_features)) if args.uncertainty else [None] * len(batch)
        for path, image, label_map, uncertainty in zip(batch, images, labels, maps):
            files = outputs(path)
            atomic_save_image(_label_image(label_map, palette), files[0])
            if args.overlay:
                atomic_save_image(Image.fromarray(overlay(image, label_map, class_names=class_names)), files[1])
            if args.uncertainty:
                # JS divergence of an M-member ensemble is at most log(M): a fixed scale keeps maps comparable.
                vmax = np.log(clf.n_estimators) if clf.n_estimators > 1 else 1.0
                atomic_save_image(Image.fromarray(uncertainty_to_color(uncertainty, vmax=vmax)), files[-2])
                atomic_save_npy(np.asarray(uncertainty, dtype=np.float32), files[-1])
            written += 1
            bar.update(1)
    bar.close()
    for message in failed:
        print(f"sklearn-ddpm predict: skipped unreadable image {message}", file=sys.stderr)
    if not args.quiet:
        resumed = f", {skipped} already done (--resume)" if skipped else ""
        print(f"Wrote predictions for {written} images to {out}{resumed}"
              f"{f', {len(failed)} unreadable' if failed else ''}.")
    return 1 if failed else 0


def _label_image(label_map, palette):
    from PIL import Image

    label_map = np.asarray(label_map)
    if label_map.max(initial=0) < 256:
        # A palette PNG stores the class indices themselves and shows them in colour.
        image = Image.fromarray(label_map.astype(np.uint8), mode="P")
        image.putpalette(palette.ravel().tolist())
        return image
    return Image.fromarray(label_map.astype(np.uint16))


def _as_list(predictions):
    return list(predictions) if isinstance(predictions, (list, np.ndarray)) else [predictions]


# -- evaluate --------------------------------------------------------------------------------------
def _evaluate(args):
    from tqdm.auto import tqdm

    from .datasets import read_image, read_mask
    from .datasets._folders import check_mask_labels, pair_images_and_masks
    from .metrics import per_class_iou

    _check_positive(args, "batch_size")
    pipeline = load_segmenter(args.model_file, device=args.device, batch_size=args.batch_size)
    # One bar over images; the extractor's own bar (switched on by `fit`) would nest inside it.
    pipeline[0].set_params(progress=False)
    file_classes = _read_classes(args.classes)
    class_names = file_classes or getattr(pipeline, "class_names_", None)
    found = pair_images_and_masks(args.image_dir, args.mask_dir, only=_listed(args))
    for kind, unpaired in (("images without a mask", found.unpaired_images),
                           ("masks without an image", found.unpaired_masks)):
        if unpaired:
            warnings.warn(f"{len(unpaired)} {kind} are left out: {', '.join(p.name for p in unpaired[:5])}"
                          f"{' ...' if len(unpaired) > 5 else ''}.", UserWarning, stacklevel=1)
    features, clf = pipeline[:-1], pipeline[-1]
    truths, predictions = [], []
    bar = tqdm(total=len(found.pairs), desc="evaluate", unit="img", disable=args.quiet)
    for start in range(0, len(found.pairs), args.batch_size):
        images = []
        for image_path, mask_path in found.pairs[start:start + args.batch_size]:
            image, mask = read_image(image_path), read_mask(mask_path).astype(np.int64)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height) but its image "
                                 f"{image_path} is {image.shape[1]}x{image.shape[0]}; a mask must have its image's size.")
            if file_classes is not None:
                check_mask_labels(mask, len(file_classes), mask_path)
            images.append(image)
            truths.append(mask.astype(np.int32))  # a whole test set of int64 maps is needlessly big
        predictions += _as_list(clf.predict(features.transform(images)))
        bar.update(len(images))
    bar.close()
    known = set(int(c) for c in clf.classes_) | {255}
    unknown = sorted({int(v) for m in truths for v in np.unique(m)} - known)
    if unknown:
        warnings.warn(f"the masks hold labels {unknown} that the model was not fitted on (its classes: "
                      f"{[int(c) for c in clf.classes_]}); their pixels count as errors and their IoU is 0.",
                      UserWarning, stacklevel=1)
    n_classes = max(max(known - {255}), *(unknown or [0])) + 1
    if class_names is not None:
        n_classes = max(n_classes, len(class_names))
    ious = per_class_iou(truths, predictions, n_classes=n_classes)
    pixels = np.bincount(np.concatenate([m[m != 255].ravel() for m in truths]), minlength=n_classes)
    print(_iou_table(ious, pixels, class_names, len(truths)))
    return 0


def _iou_table(ious, pixels, class_names, n_images):
    rows = []
    for k, (iou, count) in enumerate(zip(ious, pixels)):
        if np.isnan(iou):
            continue  # neither in the masks nor predicted: no evidence either way
        name = class_names[k] if class_names is not None and k < len(class_names) else ""
        rows.append((str(k), name, f"{100 * iou:.1f}", f"{int(count):,}"))
    header = ("class", "name", "IoU %", "pixels")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = "  ".join

    def fmt(row):
        return line([row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3].rjust(widths[3])])

    miou = float(np.nanmean(ious)) if np.isfinite(ious).any() else 0.0
    return "\n".join([fmt(header)] + [fmt(r) for r in rows] +
                     [f"mIoU {100 * miou:.1f} % over {len(rows)} classes and {n_images} images"])


# -- shared helpers --------------------------------------------------------------------------------
def load_segmenter(path, device=None, batch_size=None):
    """Load a pipeline saved by ``sklearn-ddpm fit`` (or any fitted sklearn-ddpm ``Pipeline``).

    Parameters
    ----------
    path : str or path-like
        A ``.joblib`` file. **It can execute code when loaded: only load files you trust.**
    device : str, default=None
        Run the feature extractor and the MLPs on this device; None keeps the fitted one (the CPU,
        with a warning, when that was CUDA and CUDA is absent).
    batch_size : int, default=None
        Images per UNet forward pass; None keeps the fitted value.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted; a ``UserWarning`` is emitted when it was fitted with other package versions.

    Raises
    ------
    FileNotFoundError, ValueError, sklearn.exceptions.NotFittedError

    Examples
    --------
    >>> from sklearn_ddpm._cli_segment import load_segmenter
    >>> pipeline = load_segmenter("seg.joblib")  # doctest: +SKIP
    >>> labels = pipeline.predict([image])  # doctest: +SKIP
    """
    import joblib
    from sklearn.utils.validation import check_is_fitted

    from .ensemble import MLPEnsembleClassifier
    from .features import DDPMFeatureTransformer
    from .utils import resolve_device

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        pipeline = joblib.load(path)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable model file ({type(exc).__name__}: {exc}); "
                         "was it written by `sklearn-ddpm fit` and copied completely?") from exc
    steps = getattr(pipeline, "steps", None)
    if not steps or not isinstance(steps[0][1], DDPMFeatureTransformer) or not isinstance(steps[-1][1], MLPEnsembleClassifier):
        raise ValueError(f"{path} holds a {type(pipeline).__name__}, not a Pipeline of a DDPMFeatureTransformer "
                         "and an MLPEnsembleClassifier as written by `sklearn-ddpm fit`.")
    check_is_fitted(pipeline)
    check_is_fitted(pipeline[0], "backbone_")
    saved = getattr(pipeline, "versions_", None)
    if saved:
        current = current_versions()
        changed = {k: (v, current.get(k)) for k, v in saved.items() if current.get(k) != v}
        if changed:
            warnings.warn(f"{path} was saved with other package versions "
                          f"({', '.join(f'{k} {a} -> now {b}' for k, (a, b) in changed.items())}); "
                          "predictions may differ or loading may fail. Refit if in doubt.", UserWarning, stacklevel=2)
    features, clf = pipeline[0], pipeline[-1]
    if batch_size is not None:
        features.set_params(batch_size=batch_size * len(features.steps_))  # images x steps per forward
    target = resolve_device(device if device is not None else clf.device, fitting=device is not None)
    if device is not None or target.type != str(clf.device).split(":")[0]:
        features.set_params(device=str(target))
        clf.set_params(device=str(target))
        # The fitted net is moved in place: skorch's set_params(device=...) would re-initialise it.
        clf.net_.module_.to(target)
        clf.net_.device = str(target)
    return pipeline


def _read_classes(path):
    from .datasets._folders import read_class_names

    if path is None:
        return None
    try:
        return read_class_names(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--classes: {exc}") from exc
    except ImportError as exc:
        raise RuntimeError(f"--classes: {exc}") from exc


def _check_positive(args, *names):
    for name in names + ("threads",):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
