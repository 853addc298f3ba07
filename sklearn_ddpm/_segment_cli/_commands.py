"""What ``fit``, ``predict`` and ``evaluate`` do, once their arguments are parsed."""

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .._outputs._predicting import model_class_names
from ..datasets._folders import default_class_names, read_class_names, read_image_list
from ..segmenter import load_segmenter, make_segmenter, save_segmenter


# -- fit -------------------------------------------------------------------------------------------
def fit(args):
    """``sklearn-ddpm fit``: fit a segmenter on IMAGE_DIR and MASK_DIR and save it to ``--output``."""
    from ..datasets._folders import load_image_folder
    from ..utils import resolve_device
    from ..utils._atomic import check_output_file

    start = time.perf_counter()
    _check_positive(args, "batch_size", "n_estimators", "max_epochs", "max_pixels_per_image", "max_pixels_per_class",
                    "mlp_batch_size")
    resolve_device(args.device, fitting=True)  # fail before the slow part, not after it
    output = check_output_file(args.output, "-o/--output")  # before the training, not after it
    # What a Ctrl-C leaves (sklearn_ddpm.cli.main prints it); the model is written whole or not at all.
    args.interrupted_note = f"nothing was saved; {output} {'is unchanged' if output.exists() else 'was not created'}."
    class_names = _read_classes(args.classes)
    if class_names is not None and len(class_names) < 2:
        raise ValueError(f"--classes {args.classes} names {len(class_names)} class; a segmenter needs at least two.")
    backbone = _load_backbone(args.model)
    napari = args.mask_convention == "napari"
    # napari label images hold class k as k + 1: their labels are checked once converted.
    data = load_image_folder(args.image_dir, args.mask_dir, class_names=None if napari else class_names,
                             progress=not args.quiet, only=_image_list(args), channels=args.channels,
                             intensity=args.intensity)
    if napari:
        _convert_napari_masks(data, class_names)
    _check_labelled_classes(data)
    if getattr(args, "tile", None) is None and (getattr(args, "scale", None) is not None
                                                 or getattr(args, "tile_overlap", None) is not None):
        raise ValueError("--scale and --tile-overlap apply to tiles: add --tile auto (or a tile size).")
    if args.select:
        from ._arguments import _DEFAULTS
        from ._selection import fit_selected

        pipeline = fit_selected(args, backbone, data, class_names, _DEFAULTS)
    else:
        pipeline = make_segmenter(
            backbone, **({"blocks": tuple(args.blocks)} if args.blocks else {}), steps=tuple(args.steps),
            image_size=args.image_size, prompt=args.prompt, batch_size=args.batch_size,
            n_estimators=args.n_estimators, max_epochs=args.max_epochs, max_pixels_per_image=args.max_pixels_per_image,
            max_pixels_per_class=args.max_pixels_per_class, mlp_batch_size=args.mlp_batch_size,
            standardize=args.standardize, min_class_pixels=args.min_class_pixels, n_classes=len(class_names) if class_names else None,
            # A command extracts each image's features once: a cache would only hold memory.
            memory=None, device=args.device, random_state=args.seed, progress=not args.quiet)
        if getattr(args, "tile", None) is not None:
            pipeline[0].set_params(tile=args.tile, tile_overlap=args.tile_overlap,
                                   scale=1.0 if args.scale is None else args.scale)
        if not args.quiet:
            print(f"Training {args.n_estimators} pixel MLPs on {len(data.images)} images ...", file=sys.stderr)
        pipeline.fit(data.images, data.masks)
    # The images were mapped to 8-bit RGB when read; the model keeps the mapping, so that it maps
    # the images of predict and evaluate (and of Python callers) as it mapped these.
    pipeline[0].set_params(channels=args.channels, intensity=args.intensity)
    save_segmenter(pipeline, output, class_names=class_names, training_files=[p.name for p in data.pages])
    args.interrupted_note = f"the model was saved to {output}."
    if not args.quiet:
        features, clf = pipeline[0], pipeline[-1]
        names = model_class_names(clf, class_names)
        print(f"Fitted on {len(data.images)} images, {clf.n_training_pixels_:,} labelled pixels, "
              f"{len(clf.classes_)} classes ({', '.join(names[int(c)] for c in clf.classes_)}), "
              f"blocks {list(features.blocks_)}, steps {list(features.steps_)}, "
              f"{features.n_features_out_} features per pixel, in {time.perf_counter() - start:.0f} s.")
        print(f"Saved the model to {output}")
    return 0


def _load_backbone(model):
    """Load ``--model`` with errors that name the argument (corrupt or wrong-architecture files)."""
    from diffusers.utils import logging as diffusers_logging

    from ..backbone import load_backbone

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


def _convert_napari_masks(data, class_names):
    """``--mask-convention napari``: label images exported from napari (0 = unlabelled, k + 1 = class k)."""
    from ..datasets._folders import check_mask_labels
    from ..interactive import napari_to_mask

    for i, (mask, path) in enumerate(zip(data.masks, data.mask_paths)):
        try:
            converted = napari_to_mask(mask)
        except ValueError as exc:
            raise ValueError(f"{path} (--mask-convention napari): {exc}") from exc
        if class_names is not None:
            check_mask_labels(converted, len(class_names), f"{path} (--mask-convention napari, label = class + 1)")
        data.masks[i] = converted.astype(np.int64)


def _check_labelled_classes(data):
    present = sorted({int(v) for m in data.masks for v in np.unique(m) if v != 255})
    if len(present) < 2:
        found = f"only class {present[0]}" if present else "no labelled pixel"
        raise ValueError(f"the masks of {len(data.masks)} training images hold {found} (255 = unlabelled); "
                         "a segmenter needs at least two classes among the labelled pixels.")


# -- predict ---------------------------------------------------------------------------------------
def predict(args):
    """``sklearn-ddpm predict``: write label masks (and overlays, uncertainty) for IMAGE_DIR.

    In this process, or with ``--workers``/``--scheduler`` on a Dask cluster; both write every
    image's outputs with :func:`._predicting.predict_and_write`.
    """
    from ..utils._atomic import ensure_directory

    _check_positive(args, "batch_size", "workers", "images_per_task", "pixels_per_task")
    if getattr(args, "format", "png") == "zarr":
        if args.overlay:
            raise ValueError("--overlay writes PNG overlays; a --format zarr store holds the image and its labels, "
                             "which viewers (napari) overlay themselves: drop --overlay.")
    elif getattr(args, "format", "png") == "tiff":
        if args.overlay:
            raise ValueError("--overlay writes PNG overlays; with --format tiff open the label TIFF over the image "
                             "in a viewer, or use --format png for overlays.")
        if args.workers is not None or args.scheduler is not None:
            raise ValueError("--format tiff runs in this process for now: drop --workers/--scheduler.")
    if args.workers is not None or args.scheduler is not None:
        if getattr(args, "channels", None) is not None or getattr(args, "intensity", None) is not None:
            raise ValueError("--channels/--intensity apply in this process for now: drop --workers/--scheduler "
                             "(the Dask workers map images as the model was fitted).")
    ensure_directory(args.output, "-o/--output folder")  # before the model is loaded
    args.interrupted_note = (f"the images done so far are in {args.output}, each file whole; add --resume to the "
                             "same command to skip them.")
    if args.uncertainty:
        try:
            import matplotlib  # noqa: F401  (colours the heat maps)
        except ImportError:
            raise RuntimeError("--uncertainty needs matplotlib for its heat maps: pip install 'sklearn-ddpm[plot]'.") from None
    if args.workers is not None or args.scheduler is not None:
        summary, out = _predict_on_dask(args)
    else:
        summary, out = _predict_in_process(args)
    for file, error in summary.failed:
        print(f"sklearn-ddpm predict: skipped unreadable image {file}: {error}", file=sys.stderr)
    if not args.quiet:
        print(summary.report(out))
    return 1 if summary.failed else 0


def _predict_in_process(args):
    from tqdm.auto import tqdm

    from ..datasets._folders import list_image_pages
    from .._outputs._predicting import predict_and_write, start_run

    pipeline = load_segmenter(args.model_file, device=args.device, batch_size=args.batch_size,
                              trust_pickle=args.trust_pickle)
    # One bar over images; the extractor's own bar (switched on by `fit`) would nest inside it.
    pipeline[0].set_params(progress=False)
    _set_pixel_mapping(pipeline, args)
    pages = list_image_pages(args.image_dir, only=_image_list(args))  # a stack: an image per plane
    writer, todo, summary = start_run(pipeline, pages, args.output,
                                      overlay=args.overlay, uncertainty=args.uncertainty,
                                      class_names=_read_classes(args.classes), resume=args.resume,
                                      format=args.format, probabilities=args.probabilities,
                                      progress=not args.quiet)
    with tqdm(total=len(todo), desc="predict", unit="img", disable=args.quiet or not todo) as bar:
        chunk = pipeline[0].forward_batch_size()  # images read and predicted together
        for start in range(0, len(todo), chunk):
            batch = todo[start:start + chunk]
            summary.update(predict_and_write(pipeline, batch, writer))
            bar.update(len(batch))
    return summary, writer.out


def _predict_on_dask(args):
    from pathlib import Path

    from ..distributed import predict_folder

    client = None
    if args.scheduler is not None:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        summary = predict_folder(
            args.model_file, args.image_dir, args.output, client=client, n_workers=args.workers,
            images_per_task=args.images_per_task, overlay=args.overlay, uncertainty=args.uncertainty,
            resume=args.resume, only=_image_list(args), class_names=_read_classes(args.classes), device=args.device,
            batch_size=args.batch_size, torch_threads=args.threads, progress=not args.quiet,
            trust_pickle=args.trust_pickle, format=args.format, probabilities=args.probabilities,
            pixels_per_task=args.pixels_per_task)
    finally:
        if client is not None:
            client.close()
    return summary, Path(args.output)


# -- evaluate --------------------------------------------------------------------------------------
def evaluate(args):
    """``sklearn-ddpm evaluate``: print per-class IoU and mIoU of a model on IMAGE_DIR and MASK_DIR."""
    from tqdm.auto import tqdm

    from ..datasets._folders import PageReader, file_pages, pair_images_and_masks, read_page_mask
    from ..metrics import confusion_matrix_images, iou_from_confusion
    from .._outputs._predicting import _as_list
    from .._outputs._writers import evaluation_record, iou_table, write_evaluation
    from ..utils._atomic import check_output_file

    _check_positive(args, "batch_size")
    for argument, path in (("--json", args.json), ("--csv", args.csv)):
        if path is not None:
            check_output_file(path, argument)  # before the predictions, not after them
    pipeline = load_segmenter(args.model_file, device=args.device, batch_size=args.batch_size,
                              trust_pickle=args.trust_pickle)
    # One bar over images; the extractor's own bar (switched on by `fit`) would nest inside it.
    pipeline[0].set_params(progress=False)
    _set_pixel_mapping(pipeline, args)
    reader = PageReader(getattr(pipeline[0], "channels", None), getattr(pipeline[0], "intensity", "8bit"))
    file_classes = _read_classes(args.classes)
    features, clf = pipeline[:-1], pipeline[-1]
    # The class list: --classes, else the names given at fit, else the classes the model predicts;
    # a label beyond it is an error (as in `fit`), naming the mask, rather than an IoU of 0.
    listed = model_class_names(clf, file_classes or getattr(pipeline, "class_names_", None))
    n_listed = len(file_classes) if file_classes else len(listed)
    found = pair_images_and_masks(args.image_dir, args.mask_dir, only=_image_list(args), arrays=True)
    # A stack is an image per plane, scored against the plane of its mask stack.
    pairs = [(page, mask_path) for image_path, mask_path in found.pairs for page in file_pages(image_path)]
    for kind, unpaired in (("images without a mask", found.unpaired_images),
                           ("masks without an image", found.unpaired_masks)):
        if unpaired:
            warnings.warn(f"{len(unpaired)} {kind} are left out: {', '.join(p.name for p in unpaired[:5])}"
                          f"{' ...' if len(unpaired) > 5 else ''}.", UserWarning, stacklevel=1)
    truths, predictions = [], []
    bar = tqdm(total=len(pairs), desc="evaluate", unit="img", disable=args.quiet)
    chunk = pipeline[0].forward_batch_size()  # images read and predicted together
    for start in range(0, len(pairs), chunk):
        images = []
        for page, mask_path in pairs[start:start + chunk]:
            image = reader.read(page)[0]  # as stored: the pipeline maps it (the reader checked it can)
            mask = read_page_mask(page, mask_path, n_listed, shape=image.shape)
            images.append(image)
            truths.append(mask.astype(np.int32))  # a whole test set of int64 maps is needlessly big
        predictions += _as_list(clf.predict(features.transform(images)))
        bar.update(len(images))
    bar.close()
    known = set(int(c) for c in clf.classes_) | {255}
    unknown = sorted({int(v) for m in truths for v in np.unique(m)} - known)
    if unknown:
        # Listed classes that no training pixel had: the model never predicts them.
        warnings.warn(f"the masks hold labels {unknown} that the model was not fitted on (its classes: "
                      f"{[int(c) for c in clf.classes_]}); their pixels count as errors and their IoU is 0.",
                      UserWarning, stacklevel=1)
    class_names = default_class_names(max(max(known - {255}), *(unknown or [0])) + 1,
                                      file_classes or getattr(pipeline, "class_names_", None))
    confusion = confusion_matrix_images(truths, predictions, n_classes=len(class_names))
    print(iou_table(iou_from_confusion(confusion), confusion.sum(axis=1), class_names, len(truths)))
    if args.json is not None or args.csv is not None:
        record = evaluation_record(confusion, class_names, len(truths), model=str(args.model_file),
                                   image_dir=str(args.image_dir), mask_dir=str(args.mask_dir))
        write_evaluation(record, json_path=args.json, csv_path=args.csv)
    return 0


# -- shared helpers --------------------------------------------------------------------------------
def _set_pixel_mapping(pipeline, args):
    """``--channels`` / ``--intensity`` of predict and evaluate: replace the model's mapping when given."""
    changes = {name: getattr(args, name, None) for name in ("channels", "intensity")}
    changes = {name: value for name, value in changes.items() if value is not None}
    if changes:
        pipeline[0].set_params(**changes)
def _image_list(args):
    """The names of ``--image-list``, or None without it."""
    return read_image_list(args.image_list) if args.image_list is not None else None


def _read_classes(path):
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
        if value is not None and value != "auto" and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
