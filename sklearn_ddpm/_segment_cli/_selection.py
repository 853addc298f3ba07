"""``sklearn-ddpm fit --select``: the settings chosen by cross-validation, the CV table next to the model."""

import sys
from pathlib import Path

from ..model_selection import select_segmenter


def cv_table_path(output):
    """Where ``fit --select`` writes the CV table: ``seg.joblib`` -> ``seg.cv.json``."""
    output = Path(output)
    return output.with_name(output.stem + ".cv.json") if output.suffix else output.with_name(output.name + ".cv.json")


def fit_selected(args, backbone, data, class_names, defaults):
    """Choose the settings by CV on the labelled images, refit, write the CV table; return the pipeline.

    Options the user gave (``--blocks``, ``--steps``, ``--max-pixels-per-image``, ``--batch-size``,
    ``--tile``, ``--scale`` when not their defaults) are fixed; the search varies the rest of its
    preset (with ``--tile`` and no ``--scale``, the scale too).
    """
    fixed = {}
    if args.blocks:
        fixed["blocks"] = tuple(args.blocks)
    if tuple(args.steps) != tuple(defaults["steps"]):
        fixed["steps"] = tuple(args.steps)
    if args.max_pixels_per_image is not None:
        fixed["max_pixels_per_image"] = args.max_pixels_per_image
    if args.max_pixels_per_class != defaults["max_pixels_per_class"]:
        fixed["max_pixels_per_class"] = args.max_pixels_per_class
    if args.standardize != defaults["standardize"]:
        fixed["standardize"] = args.standardize
    if args.mlp_batch_size != defaults["mlp_batch_size"]:
        fixed["mlp_batch_size"] = args.mlp_batch_size
    if args.batch_size != defaults["batch_size"]:
        fixed["batch_size"] = args.batch_size
    if args.tile is not None:  # tiles are the user's to choose; the scale, unless given, is searched
        fixed.update(features__tile=args.tile, features__tile_overlap=args.tile_overlap)
        if args.scale is not None:
            fixed["features__scale"] = args.scale
    if not args.quiet:
        print(f"Choosing the settings by cross-validation on {len(data.images)} images (search {args.search!r}, "
              f"budget {args.budget:.0f} s) ...", file=sys.stderr)
    result = select_segmenter(
        data.images, data.masks, model=backbone, search=args.search, budget=args.budget, random_state=args.seed,
        progress=not args.quiet, image_size=args.image_size, prompt=args.prompt, n_estimators=args.n_estimators,
        max_epochs=args.max_epochs, min_class_pixels=args.min_class_pixels,
        n_classes=len(class_names) if class_names else None, device=args.device, **fixed)
    table = result.write_json(cv_table_path(args.output))
    if not args.quiet:
        n = len(result.cv_results_["params"])
        stop = f"; the budget stopped it, {len(result.skipped_)} candidates skipped" if result.stopped_by_budget_ else ""
        print(f"Chose {result.best_params_} (CV mIoU {100 * result.best_score_:.1f}, best of {n} candidates, "
              f"{result.n_splits_} folds{stop}; {result.seconds_['total']:.0f} s). CV table: {table}", file=sys.stderr)
    return result.segmenter_
