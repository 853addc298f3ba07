"""One 10,000 × 10,000 image through the command line, as issue 28's "done when" says a user runs it.

1. Writes the image: a collage of the first 10 Weizmann ``test`` horses, each resized to 500²
   (:func:`tiling.collage`), as a TIFF in ``big/``. A TIFF because the CLI reads it with tifffile
   into one array; a PNG goes through Pillow's 4-byte-per-pixel buffer and a copy of it.
2. ``sklearn-ddpm fit`` (the installed entry point) on the first 10 ``labeled_pool`` horses with
   ``--tile auto --scale S`` and ``--classes`` naming background and horse, every other setting at
   its default.
3. ``sklearn-ddpm predict MODEL big/ -o out/ --format zarr --probabilities`` in a child process:
   wall and CPU seconds, peak resident memory of the child (``wait4``'s ``ru_maxrss`` and the
   largest RSS of its process tree sampled from ``/proc`` every 0.5 s), seconds per megapixel, the
   exit code, and the progress bars its stderr drew (how many counts each showed, whether one
   moved before the end). Torch threads: the CLI's ``--threads`` (the benchmark's ``--threads``).
4. Opens the store with ``zarr`` and with ``ome_zarr``'s reader (shapes, dtypes, class names and
   colours in the metadata, a label histogram, probabilities summing to one), and with napari
   (``napari.components.ViewerModel``, with every reader plugin installed that says it reads the
   path) in a child process; compares a crop of the labels with in-process prediction of that
   crop (the whole image in ``--quick``).

The napari check needs a reader plugin for OME-Zarr (napari-ome-zarr); napari's own reader does
not open these stores. ``--napari-path DIR`` adds a folder to the napari child's ``PYTHONPATH``
(a plugin installed aside, ``pip install --no-deps --target DIR napari-ome-zarr``); the record
says which plugins were found.

Examples
--------
    python benchmarks/large_image_cli.py --threads 1                     # 10,000², scale 4
    python benchmarks/large_image_cli.py --threads 1 --size 2000         # a 4 MP dry run
    python benchmarks/large_image_cli.py --quick
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import _common

NAME = "large_image_cli"
QUICK_SIZE = 320
CLASSES = ("background", "horse")


def write_image(folder, size, n_cells=10):
    """The collage of :mod:`tiling` as ``folder/collage.tif``; returns its path."""
    import tifffile

    from tiling import collage

    test, _, source = _common.horse_data("test", n_cells, with_masks=False)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "collage.tif"
    tifffile.imwrite(path, collage(test, size), photometric="rgb")
    return path, source


def copy_training(folder, n):
    """The first ``n`` ``labeled_pool`` horses and their masks in ``folder/images`` and ``folder/masks``."""
    from default_fit import _copy_split

    root = _common.DATA_DIR / "weizmann_horse"
    names = json.loads((root / "splits.json").read_text())["labeled_pool"][:n]
    _copy_split(names, root, folder, True)
    return names


def label_histogram(labels, n_classes):
    """Pixels of each class in a zarr label array, read a chunk-row at a time."""
    counts = np.zeros(n_classes, np.int64)
    step = labels.chunks[0]
    for top in range(0, labels.shape[0], step):
        counts += np.bincount(np.asarray(labels[top:top + step]).ravel(), minlength=n_classes)[:n_classes]
    return counts


def check_zarr(store, size, class_names):
    """What ``zarr`` reads from the store: arrays, metadata, histogram, a probability check."""
    import zarr

    root = zarr.open_group(str(store), mode="r")
    arrays = {name: {"shape": list(root[name].shape), "dtype": str(root[name].dtype), "chunks": list(root[name].chunks)}
              for name in ("0", "labels/classes/0", "uncertainty/0", "probabilities/0") if name in root}
    label_meta = root["labels/classes"].attrs.asdict().get("ome", {}).get("image-label", {})
    names = {p["label-value"]: p.get("class") for p in label_meta.get("properties", [])}
    colours = {c["label-value"]: c["rgba"] for c in label_meta.get("colors", [])}
    # OME-Zarr 0.5: the metadata is under "ome" (stores written before 2026-12-07 had "omero" beside it)
    attrs = root["probabilities"].attrs.asdict()
    omero = attrs.get("ome", {}).get("omero") or attrs.get("omero") or {}
    channel_names = [c["label"] for c in omero.get("channels", [])]
    n = len(class_names)
    counts = label_histogram(root["labels/classes/0"], n)
    rows = min(size, root["labels/classes/0"].chunks[0])  # the first chunk-row: a sample, not the image
    probability = np.asarray(root["probabilities/0"][:, :rows]).astype(np.float32)
    labels = np.asarray(root["labels/classes/0"][:rows])
    uncertainty = np.asarray(root["uncertainty/0"][:rows])
    expected = {"0": ([3, size, size], "uint8"), "labels/classes/0": ([size, size], "uint8"),
                "uncertainty/0": ([size, size], "float32"), "probabilities/0": ([n, size, size], "float16")}
    return {
        "arrays": arrays,
        "shapes_and_dtypes_as_expected": all(name in arrays and (arrays[name]["shape"], arrays[name]["dtype"]) == want
                                             for name, want in expected.items()),
        "ome_version": root.attrs.asdict().get("ome", {}).get("version"),
        "label_names": [names.get(k) for k in range(n)],
        "label_colours_rgba": [colours.get(k) for k in range(n)],
        "class_names_as_fitted": [names.get(k) for k in range(n)] == list(class_names),
        "probability_channel_names": channel_names,
        "label_histogram": counts.tolist(),
        "label_fractions": (counts / max(1, counts.sum())).round(5).tolist(),
        "first_chunk_row": {
            "rows": rows,
            "probability_sum_max_abs_error": float(np.abs(probability.sum(0) - 1).max()),
            "argmax_probability_equals_label_fraction": float((probability.argmax(0) == labels).mean()),
            "uncertainty_min_max": [float(uncertainty.min()), float(uncertainty.max())],
        },
    }


def check_ome_zarr(store):
    """The nodes ``ome_zarr``'s reader finds in the store, with their specs, shapes and label metadata."""
    import ome_zarr
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = []
    for node in Reader(parse_url(str(store)))():
        meta = node.metadata
        nodes.append({
            "path": str(node.zarr.path) if hasattr(node.zarr, "path") else str(node.zarr),
            "specs": [type(s).__name__ for s in node.specs],
            "shapes": [list(d.shape) for d in node.data],
            "dtypes": [str(d.dtype) for d in node.data],
            "name": meta.get("name"),
            "axes": meta.get("axes"),
            "label_colours": {str(k): list(v) for k, v in meta.get("color", {}).items()} or None,
            "label_properties": {str(k): v for k, v in meta.get("properties", {}).items()} or None,
        })
    return {"ome_zarr_version": ome_zarr.__version__, "nodes": nodes}


_NAPARI_CHILD = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import napari, npe2
from napari.components import ViewerModel
from napari.plugins import _initialize_plugins
_initialize_plugins()
path = sys.argv[1]
pm = npe2.PluginManager.instance()
readers = [r.plugin_name for r in pm.iter_compatible_readers([path])]
out = {"napari": napari.__version__, "compatible_readers": readers, "plugins": {}, "opened": {}}
for name in readers:
    try:
        out["plugins"][name] = pm.get_manifest(name).package_version
    except Exception:
        pass
    viewer = ViewerModel()
    try:
        layers = viewer.open(path, plugin=name)
        out["opened"][name] = [{
            "type": type(l).__name__, "name": l.name, "multiscale": bool(l.multiscale),
            "shape": list((l.data[0] if l.multiscale else l.data).shape),
            "dtype": str((l.data[0] if l.multiscale else l.data).dtype),
            "features": l.features.to_dict("list") if type(l).__name__ == "Labels" else None,
            "colours": ({str(k): [round(float(c), 3) for c in v] for k, v in l.colormap.color_dict.items()}
                        if type(l).__name__ == "Labels" and hasattr(l.colormap, "color_dict") else None),
        } for l in layers]
    except Exception as exc:
        out["opened"][name] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"}
print(json.dumps(out, default=str))
"""


def check_napari(store, extra_path=None):
    """napari's view of the store, from a child process (Qt-free: ``ViewerModel``, no canvas)."""
    import subprocess

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path)] + [p for p in [env.get("PYTHONPATH")] if p])
    try:
        done = subprocess.run([sys.executable, "-c", _NAPARI_CHILD, str(store)], env=env, capture_output=True,
                              text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"error": "no answer within 600 s", "extra_pythonpath": str(extra_path) if extra_path else None}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}",
                "extra_pythonpath": str(extra_path) if extra_path else None}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["extra_pythonpath"] = str(extra_path) if extra_path else None
    result["how"] = ("napari.components.ViewerModel().open(path, plugin=NAME) for each compatible reader: napari's "
                     "model of a viewer, without a Qt canvas (rendering is not checked: no OpenGL here)")
    return result


def compare_crop(model, store, crop, threads):
    """Labels of the store's top-left ``crop``² against in-process prediction of that crop.

    The crop is an image of its own: its tiles lie on its own grid, so where it is smaller than
    the image its labels may differ from the store's near tile seams and the crop's edges. With
    ``crop`` equal to the image side it is the same image, the same tiles: they should be equal.
    """
    import zarr

    from sklearn_ddpm import load_segmenter

    root = zarr.open_group(str(store), mode="r")
    image = np.moveaxis(np.asarray(root["0"][:, :crop, :crop]), 0, -1)
    stored = np.asarray(root["labels/classes/0"][:crop, :crop])
    with _common.torch_threads(threads):
        pipeline = load_segmenter(model)
        pipeline[0].set_params(progress=False)
        labels = np.asarray(pipeline.predict([image])[0])
    return {"crop_px": crop, "whole_image": crop == root["labels/classes/0"].shape[0],
            "label_agreement_fraction": float((labels == stored).mean())}


def run_cli(argv, work, echo):
    from _child_run import watch
    from distributed_predict import cli_command

    result = watch(cli_command() + argv, cwd=work, echo=echo)
    result["command"] = "sklearn-ddpm " + " ".join(argv)
    if result["returncode"] != 0:
        raise RuntimeError(f"{result['command']} exited with {result['returncode']}:\n{result['stderr_tail']}")
    return result


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10_000, help="side of the image in pixels")
    p.add_argument("--scale", type=float, default=4.0, help="fit's --scale: image pixels per model pixel")
    p.add_argument("--n-train", type=int, default=10, help="labeled_pool horses to fit on")
    p.add_argument("--crop", type=int, default=512, help="side of the crop compared with in-process prediction")
    p.add_argument("--napari-path", type=Path, default=None,
                   help="a folder added to the napari check's PYTHONPATH (a reader plugin installed aside)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep big/, the model and out/ here (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.crop = QUICK_SIZE, 2, QUICK_SIZE
    crop = min(args.crop, args.size)
    threads = ["--threads", str(args.threads)] if args.threads else []
    echo = not args.quick
    work = Path(tempfile.mkdtemp(prefix="large_image_cli-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        train_names = copy_training(work / "train", args.n_train)
        image_path, image_source = write_image(work / "big", args.size)
        quick = ["--n-estimators", "2", "--max-epochs", "2"] if args.quick else []
        (work / "classes.txt").write_text("\n".join(CLASSES) + "\n")  # names, as a user gives them
        fit = run_cli(["fit", "train/images", "train/masks", "--classes", "classes.txt", "-o", "model.skddpm",
                       "--tile", "auto",
                       "--scale", str(args.scale), *threads, *quick], work, echo)
        load_before = round(os.getloadavg()[0], 2)
        predict = run_cli(["predict", "model.skddpm", "big", "-o", "out", "--format", "zarr", "--probabilities",
                           *threads], work, echo)
        store = work / "out" / "collage.ome.zarr"
        from sklearn_ddpm import load_segmenter
        from sklearn_ddpm._outputs._predicting import model_class_names

        pipeline = load_segmenter(work / "model.skddpm")
        class_names = model_class_names(pipeline[-1], getattr(pipeline, "class_names_", None))
        transformer = pipeline[0]
        settings = {"scale": args.scale, "tile": transformer.tile, "tile_model_px": transformer.tile_size_,
                    "tile_overlap_model_px": transformer.tile_overlap_, "steps": list(transformer.steps_),
                    "blocks": list(transformer.blocks_),
                    "n_estimators": pipeline[-1].n_estimators, "refine": repr(pipeline[-1].refine),
                    "torch_threads": args.threads if args.threads else "torch default (the CLI's --threads not given)",
                    "device": "cpu"}
        del pipeline
        megapixels = args.size**2 / 1e6
        payload = {
            "question": "issue 28 done-when: sklearn-ddpm predict MODEL big/ -o out/ --format zarr --probabilities on "
                        f"one {args.size} x {args.size} image: memory, time, progress bar, readable outputs",
            "quick": args.quick,
            "image": {"side_px": args.size, "megapixels": megapixels, "file": "big/collage.tif (TIFF, tifffile)",
                      "file_bytes": image_path.stat().st_size,
                      "content": f"collage of {image_source}, each resized to 500x500"},
            "fit_data": f"weizmann_horse/labeled_pool[:{args.n_train}]", "train_images": train_names,
            "model": "bundled horse DDPM (sklearn-ddpm fit without --model)",
            "settings": settings,
            "fit": {k: fit[k] for k in ("command", "returncode", "wall_seconds", "cpu_seconds", "peak_rss_bytes_wait4",
                                        "peak_rss_bytes_sampled", "stdout", "stderr_tail")},
            "predict": {**predict, "load_average_before": load_before,
                        "wall_seconds_per_megapixel": predict["wall_seconds"] / megapixels,
                        "cpu_seconds_per_megapixel": predict["cpu_seconds"] / megapixels,
                        "peak_rss_target_bytes": 4 * 10**9,
                        "peak_rss_within_target": max(predict["peak_rss_bytes_wait4"],
                                                      predict["peak_rss_bytes_sampled"]) <= 4 * 10**9,
                        "progress_bar_moved": any(b["moved_before_end"] for b in predict["bars"].values())},
            "store_bytes": sum(f.stat().st_size for f in store.rglob("*") if f.is_file()),
            "zarr": check_zarr(store, args.size, class_names),
            "ome_zarr": check_ome_zarr(store),
            "napari": check_napari(store, args.napari_path),
            "crop_vs_in_process": compare_crop(work / "model.skddpm", store, crop, args.threads),
        }
        if args.size != 10_000:
            payload["extrapolated_cpu_seconds_10000"] = {
                "value": payload["predict"]["cpu_seconds_per_megapixel"] * 100,
                "how": "EXTRAPOLATED, not measured: CPU seconds per megapixel of this run x 100 megapixels"}
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    name = NAME if args.size == 10_000 and not args.quick else f"{NAME}_{'quick' if args.quick else f'{args.size}px'}"
    path = _common.write_json(name, payload, args.out, "cpu")
    pr = payload["predict"]
    _common.print_table(
        [{"image": f"{args.size}²", "scale": args.scale, "wall s": round(pr["wall_seconds"]),
          "CPU s": round(pr["cpu_seconds"]), "CPU s/MP": round(pr["cpu_seconds_per_megapixel"], 2),
          "peak RSS GB": round(max(pr["peak_rss_bytes_wait4"], pr["peak_rss_bytes_sampled"]) / 1e9, 2),
          "bar moved": pr["progress_bar_moved"], "exit": pr["returncode"],
          "names in store": payload["zarr"]["class_names_as_fitted"]}],
        ["image", "scale", "wall s", "CPU s", "CPU s/MP", "peak RSS GB", "bar moved", "exit", "names in store"],
        title=f"{NAME} -> {path}")
    return path


if __name__ == "__main__":
    main()
