"""Argument parsers of ``fit``, ``predict`` and ``evaluate``: options, help texts and examples."""

import argparse
import inspect

from .._outputs._zarr import PIXELS_PER_TASK
from ..backbone._cli import image_size_argument
from ..model_selection import SEARCH_PRESETS, parse_budget
from ..segmenter import make_segmenter
from . import _commands

SECURITY_NOTE = ("Security: `fit` writes the safe model format (safetensors + JSON, see docs/security.md): loading "
                 "it runs no code from the file. A joblib/pickle model file runs any code it holds when loaded, so "
                 "it is refused unless --trust-pickle is given: only give it for files you trust.")

# The defaults the commands show are those of the pipeline they build, decided in make_segmenter.
_DEFAULTS = {name: p.default for name, p in inspect.signature(make_segmenter).parameters.items()}

_FIT_EPILOG = """\
examples:
  # fit on a folder of photos and a folder of masks with the same file names (a.jpg <-> a.png)
  sklearn-ddpm fit photos/ masks/ --model runs/my_ddpm -o seg.skddpm

  # the paper's blocks and steps, 10 MLPs, at most 5000 labelled pixels per image, named classes
  sklearn-ddpm fit photos/ masks/ --blocks 5 6 7 8 12 --steps 50 150 250 \\
      --n-estimators 10 --max-pixels-per-image 5000 --classes classes.txt -o seg.skddpm

  # scribbles: a few labelled strokes per class, everything else 255 (no flag needed)
  sklearn-ddpm fit photos/ scribbles/ -o seg.skddpm

  # label images painted in napari and exported (0 = unlabelled, class k drawn as k + 1)
  sklearn-ddpm fit photos/ napari_labels/ --mask-convention napari --classes classes.txt -o seg.skddpm

  # 16-bit or float microscopy (TIFF stacks, zarr): the mean of the channels as gray, stretched
  # between each image's 0.5th and 99.5th percentiles; the model keeps this mapping
  sklearn-ddpm fit cells/ cell_masks/ --channels mean --intensity percentile -o seg.skddpm

Images: any Pillow format, TIFF (tifffile: 16-bit, float, any channels) and zarr / OME-Zarr stores;
a stack of several planes (TIFF pages, Z/T axes) is one image per plane, named NAME_0000,
NAME_0001, ..., and its mask is a stack of as many planes (TIFF, zarr or a (planes, H, W) .npy).
Masks hold class indices 0..K-1 (single-channel or palette PNG, or .npy); 255 marks unlabelled
pixels (with --mask-convention napari: 0 marks them and class k is k + 1). Sparse masks (an image
less than half labelled: scribbles, strokes, clicks) keep every labelled pixel; in denser ones a
class with fewer than 20 pixels in an image is left out of it (--min-class-pixels). A classes file (one name per line, or a JSON/YAML list) fixes K and names the classes;
without it the classes are called "class 0", "class 1", ...
Without --model the small horse DDPM bundled with the package is used.
"""

_PREDICT_EPILOG = f"""\
examples:
  # label masks (palette PNGs of class indices, at each image's original size)
  sklearn-ddpm predict seg.skddpm new_photos/ -o predictions/

  # also colour overlays and uncertainty maps; skip images already done by an interrupted run
  sklearn-ddpm predict seg.skddpm new_photos/ -o predictions/ --overlay --uncertainty --resume

  # label TIFFs (class names in their description) with float16 probability stacks beside them
  sklearn-ddpm predict seg.skddpm cells/ -o predictions/ --format tiff --probabilities

  # on a Dask cluster of 4 worker processes on this machine (pip install 'sklearn-ddpm[distributed]')
  sklearn-ddpm predict seg.skddpm new_photos/ -o predictions/ --workers 4

  # on a running Dask cluster (every worker must see the same paths, e.g. a shared file system)
  sklearn-ddpm predict seg.skddpm /data/photos/ -o /data/predictions/ --scheduler tcp://scheduler:8786

Outputs: OUT_DIR/NAME.png (labels), OUT_DIR/overlay/NAME.png (with a legend of the class names),
OUT_DIR/uncertainty/NAME.png (heat map) and NAME.npy (float32 Jensen-Shannon divergence of the
ensemble), OUT_DIR/probabilities/NAME.npy (float16, (n_classes, H, W)). --format tiff writes
OUT_DIR/NAME.tif, probabilities/NAME.tif and uncertainty/NAME.tif; --format zarr NAME.ome.zarr.
Plane k of a stack is the image NAME_000k. Every file is written to a temporary name and renamed, so an interrupted run leaves no
truncated file. With --workers or --scheduler every Dask worker loads the model once and segments
tasks of --images-per-task images; --threads is then torch's CPU threads per worker (default: the
machine's cores divided among its workers). See docs/scaling.md.

{SECURITY_NOTE}
"""

_EVALUATE_EPILOG = f"""\
examples:
  sklearn-ddpm evaluate seg.skddpm test_photos/ test_masks/
  sklearn-ddpm evaluate seg.skddpm test_photos/ test_masks/ --classes classes.txt

IoU of every class is accumulated over all images (pixels labelled 255 are not scored); mIoU is
the mean over the classes present in the masks or the predictions. A mask label beyond the class
list (--classes, else the names given at fit, else the model's classes) is an error naming the
mask; a listed class the model was not fitted on is reported with a warning and scores an IoU of 0.
--json FILE and --csv FILE also write the scores: per class its IoU (a fraction) with the pixel
counts it comes from (intersection, union, true and predicted pixels), and the mIoU.

{SECURITY_NOTE}
"""


def register(subparsers):
    """Add the ``fit``, ``predict`` and ``evaluate`` sub-commands to ``argparse`` sub-parsers."""
    fit = _add_command(
        subparsers, "fit", help="fit a segmenter on a folder of images and a folder of masks",
        description="Fit DDPM pixel features + an ensemble of pixel MLPs on images and their masks "
                    "(paired by file name) and save the fitted scikit-learn pipeline in the safe model format "
                    "(safetensors + JSON: loading it runs no code from the file).",
        epilog=_FIT_EPILOG)
    fit.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of training images (any Pillow format, TIFF "
                     "files and stacks, zarr / OME-Zarr stores)")
    fit.add_argument("mask_dir", metavar="MASK_DIR", help="folder of masks with the images' file names")
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="where to save the model (.skddpm by convention; the safe "
                     "format whatever the name)")
    fit.add_argument("--model", default=None, metavar="BACKBONE",
                     help="diffusers model folder (a DDPM or a Stable Diffusion pipeline), guided-diffusion .pt or "
                          "hub id (default: bundled horse DDPM)")
    fit.add_argument("--blocks", type=int, nargs="+", default=None, metavar="B",
                     help="decoder blocks to read (default: the paper's relative depths; see `sklearn-ddpm blocks`)")
    fit.add_argument("--steps", type=int, nargs="+", default=list(_DEFAULTS["steps"]), metavar="T",
                     help=f"diffusion timesteps (default: {' '.join(map(str, _DEFAULTS['steps']))})")
    fit.add_argument("--image-size", type=image_size_argument, metavar="N|HxW", default=None,
                     help="model input size, e.g. 128 or 192x128 for portrait photos (default: the model's)")
    fit.add_argument("--tile", type=_tile_argument, default=None, metavar="auto|N",
                     help="read images as overlapping tiles of N model pixels ('auto': the model's input) at "
                          "--scale image pixels per model pixel, for large images (docs/large_images.md)")
    fit.add_argument("--scale", type=float, default=None, metavar="S",
                     help="with --tile: image pixels per model pixel (default 1: full resolution)")
    fit.add_argument("--tile-overlap", type=int, default=None, metavar="N",
                     help="with --tile: least model pixels neighbouring tiles share (default: a quarter of the tile)")
    fit.add_argument("--prompt", default=_DEFAULTS["prompt"], metavar="TEXT",
                     help="text prompt of a Stable-Diffusion-style --model (default: the empty prompt)")
    fit.add_argument("--classes", default=None, metavar="FILE", help="class names: .txt (one per line), .json or .yaml")
    fit.add_argument("--n-estimators", type=int, metavar="N", default=_DEFAULTS["n_estimators"],
                     help=f"MLPs in the ensemble (default: {_DEFAULTS['n_estimators']})")
    fit.add_argument("--max-epochs", type=int, metavar="N", default=_DEFAULTS["max_epochs"],
                     help=f"epochs per MLP at most (default: {_DEFAULTS['max_epochs']})")
    fit.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=_DEFAULTS["standardize"],
                     help="train the MLPs on standardized features (default: yes, chosen by cross-validation; "
                          "--no-standardize: the paper's raw features)")
    fit.add_argument("--mlp-batch-size", type=int, metavar="N", default=_DEFAULTS["mlp_batch_size"],
                     help="training batch of the pixel MLPs (default: %(default)s, chosen by cross-validation on "
                          "Weizmann; 64 is the reference's)")
    fit.add_argument("--max-pixels-per-image", type=int, default=None, metavar="N",
                     help="sample at most N labelled pixels per image (default: no per-image cap)")
    fit.add_argument("--max-pixels-per-class", type=_pixels_cap, default=_DEFAULTS["max_pixels_per_class"],
                     metavar="N|all",
                     help="sample at most N labelled pixels of each class per image; 'all' with no "
                          "--max-pixels-per-image trains on every labelled pixel, as the paper (slow on a CPU) "
                          "(default: %(default)s, chosen by cross-validation on Weizmann)")
    fit.add_argument("--min-class-pixels", type=_min_class_pixels, metavar="N|auto",
                     default=_DEFAULTS["min_class_pixels"],
                     help="leave a class out of an image where it has fewer labelled pixels; 'auto': 20 in "
                          "images at least half labelled, 0 (keep all) in sparser, scribble masks "
                          f"(default: {_DEFAULTS['min_class_pixels']})")
    fit.add_argument("--mask-convention", choices=("ignore255", "napari"), default="ignore255",
                     help="ignore255: class k is k, 255 = unlabelled; napari: label images exported from napari, "
                          "0 = unlabelled, class k is k + 1 (default: ignore255)")
    fit.add_argument("--seed", type=int, metavar="N", default=_DEFAULTS["random_state"],
                     help=f"random seed (default: {_DEFAULTS['random_state']})")
    select = fit.add_argument_group("choosing the settings by cross-validation (docs/model_selection.md)")
    select.add_argument("--select", action="store_true",
                        help="choose blocks, steps, standardization, refinement, pixels per image, class balancing "
                             "and noise draws by GroupKFold cross-validation on the labelled images, refit the best "
                             "on all of them, and write the CV table next to the model (MODEL.cv.json); options "
                             "given explicitly (--blocks, --steps, --max-pixels-per-image) stay fixed")
    select.add_argument("--budget", type=duration, default="20m", metavar="TIME",
                        help="time for --select, search and refit, e.g. 20m, 1h, 900 (seconds); no candidate starts "
                             "that would not finish within it, and the best so far is refitted (default: 20m)")
    select.add_argument("--search", default="default", choices=sorted(SEARCH_PRESETS),
                        help="the search space of --select (default: default)")
    _common_arguments(fit, _commands.fit, device_default=_DEFAULTS["device"])
    _pixel_arguments(fit, fit=True)

    predict = _add_command(
        subparsers, "predict", help="segment a folder of images with a fitted model",
        description="Predict label masks (PNG, original image sizes) for every image of IMAGE_DIR.",
        epilog=_PREDICT_EPILOG, with_model=True)
    predict.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    predict.add_argument("--overlay", action="store_true", help="also write colour overlays with a legend")
    predict.add_argument("--uncertainty", action="store_true", help="also write ensemble uncertainty maps")
    predict.add_argument("--resume", action="store_true", help="skip images whose outputs all exist")
    predict.add_argument("--format", choices=["png", "tiff", "zarr"], default="png",
                         help="png: label PNGs (default); tiff: a label TIFF per image (class names in its "
                              "description, as JSON); zarr: one OME-Zarr store per image (labels with class names "
                              "and colours, uncertainty); tiff and zarr are written band by band (docs/cli.md)")
    predict.add_argument("--probabilities", action="store_true",
                         help="also write each class's probability as float16: probabilities/NAME.npy "
                              "(n_classes, H, W) with png, probabilities/NAME.tif (a page per class) and the "
                              "uncertainty with tiff, an array in the store with zarr")
    predict.add_argument("--classes", default=None, metavar="FILE", help="class names for overlay legends "
                         "(default: those given at fit, else class 0, class 1, ...)")
    _common_arguments(predict, _commands.predict)
    _pixel_arguments(predict)
    dask = predict.add_argument_group("Dask (pip install 'sklearn-ddpm[distributed]')")
    where = dask.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", default=None,
                       help="segment on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="segment on the running Dask cluster at ADDRESS, e.g. tcp://host:8786")
    dask.add_argument("--images-per-task", type=int, metavar="N", default=8,
                      help="images per Dask task (default: 8)")
    dask.add_argument("--pixels-per-task", type=int, metavar="N", default=PIXELS_PER_TASK,
                      help="with --format zarr and a tiling model, split an image of more than N pixels into "
                           "bands of whole 1024-row chunks of about N pixels, each a Dask task writing into the "
                           f"image's one store; 1 splits every image (default: {PIXELS_PER_TASK})")


    evaluate = _add_command(
        subparsers, "evaluate", help="mIoU and per-class IoU of a fitted model on images with masks",
        description="Score a fitted model on IMAGE_DIR against the masks of MASK_DIR.",
        epilog=_EVALUATE_EPILOG, with_model=True)
    evaluate.add_argument("mask_dir", metavar="MASK_DIR", help="folder of masks with the images' file names")
    evaluate.add_argument("--classes", default=None, metavar="FILE",
                          help="class names (default: those given at fit, else class 0, class 1, ...); "
                               "labels beyond them are an error")
    evaluate.add_argument("--json", default=None, metavar="FILE",
                          help="also write the scores to FILE: mIoU and, per class, IoU (a fraction), intersection "
                               "and union pixel counts, true and predicted pixels")
    evaluate.add_argument("--csv", default=None, metavar="FILE",
                          help="also write them as CSV: one row per class, then a mIoU row")
    _common_arguments(evaluate, _commands.evaluate)
    _pixel_arguments(evaluate)
    return fit, predict, evaluate


def _add_command(subparsers, name, *, help, description, epilog, with_model=False):
    """A sub-parser whose epilog keeps its layout; ``with_model`` adds the MODEL and IMAGE_DIR positionals."""
    parser = subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    if with_model:
        parser.add_argument("model_file", metavar="MODEL", help="a model saved by `sklearn-ddpm fit`")
        parser.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images")
        add_trust_pickle_argument(parser)
    return parser


def add_trust_pickle_argument(parser):
    """Add ``--trust-pickle``, the one switch that lets a command load a joblib/pickle model file."""
    parser.add_argument("--trust-pickle", action="store_true",
                        help="also load a joblib/pickle model file (e.g. from an older sklearn-ddpm fit). Loading a "
                             "pickle runs any code it holds: only for files you trust")


def add_batch_size_argument(parser):
    """Add ``--batch-size``, images per UNet forward pass, as every command that extracts features has it."""
    default = _DEFAULTS["batch_size"]
    parser.add_argument("--batch-size", type=_batch_size, metavar="N|auto", default=default,
                        help="images per UNet forward pass; each image runs at every diffusion timestep, so a "
                             "pass holds N x (number of timesteps) inputs; 'auto' fits a pass in the memory "
                             f"budget of DDPMFeatureTransformer(batch_size='auto') (default: {default})")


def _batch_size(value):
    return value if value == "auto" else int(value)


def duration(value):
    """``--budget``: seconds of a duration such as 20m, 1h30m or 900 (argparse names this type in its errors)."""
    return parse_budget(value, "--budget")


def _pixels_cap(value):
    return None if value == "all" else int(value)


def _min_class_pixels(value):
    return value if value == "auto" else int(value)


def _common_arguments(parser, func, device_default=None):
    """The options every command shares, and the function that runs it."""
    parser.set_defaults(func=func)
    parser.add_argument("--device", default=device_default,
                        help=f"cpu, cuda or cuda:N (default: {device_default})" if device_default else
                             "cpu, cuda or cuda:N (default: the device used at fit, or the CPU without CUDA)")
    add_batch_size_argument(parser)
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)")
    parser.add_argument("--image-list", default=None, metavar="FILE",
                        help="use only the images named in FILE (one per line, with or without extension, "
                             "# starts a comment), e.g. one split of a folder that holds several")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def _pixel_arguments(parser, fit=False):
    """``--channels`` and ``--intensity``: DDPMFeatureTransformer's ``channels`` and ``intensity``."""
    group = parser.add_argument_group(
        "pixel formats (16-bit, float, not 3 channels; docs/cli.md)",
        "The model's input is 8-bit RGB; these options map other images onto it, as the parameters of the same "
        "names of DDPMFeatureTransformer. " + (
            "The model keeps them: predict and evaluate map their images the same way." if fit else
            "Default: the mapping the model was fitted with."))
    keep = "" if fit else "; default: the model's"
    group.add_argument("--channels", type=channels_argument, default=None, metavar="mean|I|R,G,B",
                       help="which channels become R, G and B: three indices (2,1,0 for BGR), one index (that "
                            "channel as gray) or 'mean' (the mean of all channels as gray)"
                            + (keep or "; default: the images are RGB"))
    group.add_argument("--intensity", choices=("8bit", "percentile"), default="8bit" if fit else None,
                       help="how values become 0-255: 8bit takes 0-255 (and floats in [0, 1]) as they are; "
                            "percentile maps each channel's 0.5th-99.5th percentiles of each image to 0-255, for "
                            f"16-bit and float images{keep or ' (default: 8bit)'}")


def channels_argument(value):
    """``--channels``: "mean", or comma-separated channel indices (one or three) -> a tuple of int."""
    if value == "mean":
        return value
    try:
        picked = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'mean' or channel indices such as 0 or 2,1,0; got {value!r}") from None
    if len(picked) not in (1, 3):
        raise argparse.ArgumentTypeError(f"give three channel indices (R,G,B) or one (gray); got {value!r}")
    return picked


def _tile_argument(value):
    """``--tile``: "auto" or a positive number of model pixels."""
    if value == "auto":
        return value
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of model pixels, got {value!r}") from None
    if tile <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of model pixels, got {value!r}")
    return tile
