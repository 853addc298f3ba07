"""Predicting a large image through tiles: peak memory and seconds per megapixel.

Fits the package's default segmenter (``make_segmenter()``, bundled horse DDPM, guided filter) with
``features__tile="auto"`` at ``--scale`` image pixels per model pixel on the first 10 ``labeled_pool`` horses,
then predicts one ``--size`` × ``--size`` image: a collage of the ``test`` horses (each resized to
500²), so the content is photographic. Prediction runs band by band
(``MLPEnsembleClassifier.predict_bands``): the tiles of a band go through the UNet when the band is
reached, so the features of the image are never held whole; the labels go into one uint8 array,
the probabilities and uncertainty are reduced to summary figures as they come.

The record gives the wall time of fitting and of predicting, seconds per megapixel, the number of
tiles, and the process's peak resident memory (the target: at most 4 GB with the bundled backbone).
With ``--max-minutes`` a run that would take longer stops after that many minutes of prediction and
records the rows it finished and a linear extrapolation to the whole image, labelled as such.

Examples
--------
    python benchmarks/tiling.py --threads 1 --size 10000 --scale 4 --max-minutes 40
    python benchmarks/tiling.py --threads 1 --size 2048 --scale 1 --out benchmarks/results/tiling_scale1.json
    python benchmarks/tiling.py --quick
"""

import time

import numpy as np

import _common

NAME = "tiling"


def collage(images, size, cell=500):
    """A ``size`` × ``size`` uint8 image tiled with the ``images``, each resized to ``cell``²."""
    from PIL import Image

    cells = [np.asarray(Image.fromarray(image).resize((cell, cell), Image.BILINEAR)) for image in images]
    out = np.empty((size, size, 3), np.uint8)
    k = 0
    for top in range(0, size, cell):
        for left in range(0, size, cell):
            piece = cells[k % len(cells)]
            k += 1
            out[top : top + cell, left : left + cell] = piece[: size - top, : size - left]
    return out


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10_000, help="side of the predicted image in pixels")
    p.add_argument("--scale", type=float, default=4.0, help="image pixels per model pixel")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile_overlap (default: a quarter of the tile)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop predicting after this many minutes and extrapolate (labelled)")
    args = p.parse_args(argv)
    if args.quick:
        args.size = 600
    import torch

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.features._tiling import tile_grid

    device, skipped = _common.benchmark_device(NAME, args)
    if device is None:
        return skipped
    with _common.torch_threads(args.threads):
        train, masks, source = _common.horse_data("labeled_pool", 2 if args.quick else 10)
        test, _, _ = _common.horse_data("test", 10, with_masks=False)
        pipe = make_segmenter(None, device=str(device), max_pixels_per_image=1000, random_state=0,
                              **({"n_estimators": 2, "max_epochs": 2} if args.quick else {}))
        pipe.set_params(features__tile="auto", features__scale=args.scale, features__tile_overlap=args.tile_overlap,
                        features__progress=True)
        with _common.stopwatch(device) as fit:
            pipe.fit(train, masks)
        image = collage(test, args.size)
        rss_before_predict = _common.current_rss_bytes()
        features_step, clf = pipe[:-1], pipe[-1]
        labels = np.zeros((args.size, args.size), np.uint8)
        counts = np.zeros(len(clf.classes_), np.int64)
        uncertainty_sum = 0.0
        rows_done, stopped = 0, False
        start = time.perf_counter()
        with _common.stopwatch(device) as predict:
            features = features_step.transform([image])
            for _, top, bottom, out in clf.predict_bands(features):
                labels[top:bottom] = out["labels"]
                counts += np.bincount(out["labels"].ravel(), minlength=len(counts))
                uncertainty_sum += float(out["uncertainty"].sum(dtype=np.float64))
                rows_done = bottom
                _common.current_rss_bytes()  # a reading: the peak is the largest of them and the kernel's
                if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
                    stopped = rows_done < args.size
                    break
        seconds = predict["seconds"]
        megapixels = args.size * rows_done / 1e6
        transformer = features_step[-1] if hasattr(features_step, "__getitem__") else features_step
        grid = tile_grid(image.shape[:2], transformer.tile_size_, transformer.tile_overlap_, args.scale,
                         transformer.backbone_.size_multiple)
        payload = {
            "question": "memory and time of predicting one large image through tiles (bundled horse DDPM)",
            "image": {"side_px": args.size, "megapixels": args.size**2 / 1e6,
                      "content": "collage of the first 10 weizmann test horses, each resized to 500x500"},
            "fit_data": source,
            "settings": {"scale_image_px_per_model_px": args.scale, "tile_model_px": transformer.tile_size_,
                         "tile_overlap_model_px": transformer.tile_overlap_, "steps": list(transformer.steps_),
                         "blocks": list(transformer.blocks_), "refine": repr(clf.refine),
                         "n_estimators": clf.n_estimators, "fit_images": len(train),
                         "threads": _common._measured_threads, "device": str(device)},
            "n_tiles": grid.n_tiles,
            "model_grid": list(grid.grid_size),
            "computed_band_by_band": bool(features.is_lazy(0)),
            "fit_seconds": fit["seconds"],
            "predict_seconds": seconds,
            "rows_predicted": rows_done,
            "stopped_by_max_minutes": stopped,
            "seconds_per_megapixel": seconds / megapixels if megapixels else None,
            "peak_rss_bytes": _common.peak_rss_bytes(),
            "rss_before_predict_bytes": rss_before_predict,
            "peak_rss_target_bytes": 4 * 10**9,
            "label_fractions": (counts / max(1, counts.sum())).tolist(),
            "mean_uncertainty": uncertainty_sum / max(1, args.size * rows_done),
        }
        if stopped:
            payload["extrapolated_predict_seconds_whole_image"] = {
                "value": seconds * args.size / rows_done,
                "how": "EXTRAPOLATED, not measured: predict_seconds x side / rows_predicted (rows cost alike)",
            }
    path = _common.write_json(NAME, payload, args.out, device)
    _common.print_table(
        [{"image": f"{args.size}²", "scale": args.scale, "rows": f"{rows_done}/{args.size}",
          "predict s": round(seconds), "s/MP": round(payload["seconds_per_megapixel"], 2),
          "peak RSS GB": round(payload["peak_rss_bytes"] / 1e9, 2)}],
        ["image", "scale", "rows", "predict s", "s/MP", "peak RSS GB"], title=f"tiling -> {path}")
    del torch
    return path


if __name__ == "__main__":
    main()
