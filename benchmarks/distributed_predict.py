"""Images per second of ``predict_folder`` on 1 and 2 local Dask workers against the in-process CLI.

Same run, same images, same fitted model:

- ``cli``: ``sklearn-ddpm predict`` in a subprocess, as a user runs it (``--threads`` = the
  machine's cores); its wall time includes Python's start, the imports and the model load;
- ``dask_1_worker`` and ``dask_2_workers``: a ``LocalCluster`` of that many worker processes (one
  task thread each, torch threads = cores / workers, predict_folder's default), started and timed
  apart (``cluster_start_seconds``); then ``predict_folder(client=...)``, whose time includes every
  worker loading the model once.

Each configuration runs ``repeats`` times, every other repeat in reverse order (the load of a shared
machine drifts); ``images_per_second`` is images / the mean wall time of the prediction (the CLI's
whole command); the ratio is to the CLI's. Peak memory: of the CLI process, and of every Dask worker process (``ru_maxrss``).
The label maps of every Dask run are compared with the CLI's (``labels_differing_from_cli``: the
fraction of pixels whose label differs, and in how many images): the runs use other torch thread
counts and other batches, so floating-point ties at class boundaries may fall the other way.
``io``: seconds per image of reading a photo and writing its label PNG, in this process, one thread.

Data: the first ``n_images`` Weizmann ``unlabeled`` horses; the model is fitted on the first
``n_train`` ``labeled_pool`` horses with the bundled backbone and a small ensemble.

Examples
--------
    python benchmarks/distributed_predict.py            # 40 images, a few minutes on 2 cores
    python benchmarks/distributed_predict.py --quick    # 3 images, a tiny random UNet (smoke test)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common

NAME = "distributed_predict"
FULL = {"n_images": 40, "n_train": 5, "n_estimators": 2, "max_epochs": 10, "max_pixels_per_image": 2000,
        "images_per_task": 4, "workers": [1, 2], "backbone": "bundled", "repeats": 2}
# A smoke run: the tiny random UNet of the tests, so that the figures mean nothing but it takes seconds.
QUICK = {"n_images": 3, "n_train": 2, "n_estimators": 1, "max_epochs": 1, "max_pixels_per_image": 500,
         "images_per_task": 2, "workers": [1, 2], "backbone": "tiny_unet", "repeats": 1}


def build_parser():
    return _common.parser(__doc__.splitlines()[0])


def stage(work, settings):
    """Copy the images to segment into ``work/photos``; fit the model and save it to ``work/seg.joblib``."""
    from PIL import Image

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm import save_segmenter

    root = _common.DATA_DIR / "weizmann_horse"
    splits = json.loads((root / "splits.json").read_text())
    photos = work / "photos"
    photos.mkdir()
    names = splits["unlabeled"][:settings["n_images"]]
    for name in names:
        shutil.copy(root / "images" / f"{name}.jpg", photos)
    train = splits["labeled_pool"][:settings["n_train"]]
    images = [np.asarray(Image.open(root / "images" / f"{n}.jpg").convert("RGB")) for n in train]
    masks = [np.asarray(Image.open(root / "masks" / f"{n}.png")).astype(np.int64) for n in train]
    backbone = None  # the bundled horse DDPM
    if settings["backbone"] == "tiny_unet":
        from sklearn_ddpm.backbone import Backbone, tiny_unet

        backbone = Backbone(tiny_unet(), source="tiny_unet")
    start = time.perf_counter()
    pipeline = make_segmenter(backbone, n_estimators=settings["n_estimators"], max_epochs=settings["max_epochs"],
                              max_pixels_per_image=settings["max_pixels_per_image"], random_state=0)
    pipeline.fit(images, masks)
    save_segmenter(pipeline, work / "seg.joblib")  # the safe format; the name is the record's
    return {"predict": names, "train": train}, time.perf_counter() - start


def cli_command():
    script = Path(sys.executable).parent / "sklearn-ddpm"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sklearn_ddpm.cli"]


def run_cli(work, threads):
    """``sklearn-ddpm predict`` in a subprocess: wall time and the child's peak memory."""
    argv = cli_command() + ["predict", "seg.joblib", "photos", "-o", "out_cli", "--threads", str(threads), "--quiet"]
    start = time.perf_counter()
    # A fresh interpreter measures what a user waits for; wait4 gives that very child's peak memory.
    process = subprocess.Popen(argv, cwd=work)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with exit status {os.waitstatus_to_exitcode(status)}")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return {"command": "sklearn-ddpm " + " ".join(argv[len(cli_command()):]), "seconds": seconds,
            "peak_rss_mib": round(peak / 2**20, 1)}


def _worker_peak_rss():
    import resource
    import sys

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def run_dask(work, n_workers, images_per_task):
    """A local cluster of ``n_workers`` processes, then ``predict_folder`` on it."""
    import distributed
    import torch

    from sklearn_ddpm.distributed import predict_folder

    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        cluster_start = time.perf_counter() - start
        out = work / f"out_dask_{n_workers}"
        start = time.perf_counter()
        summary = predict_folder(work / "seg.joblib", work / "photos", out, client=client,
                                 images_per_task=images_per_task, progress=False)
        seconds = time.perf_counter() - start
        peaks = client.run(_worker_peak_rss)
        threads = client.run(torch.get_num_threads)
    if summary.failed:
        raise RuntimeError(f"failed images: {summary.failed}")
    return {"n_workers": n_workers, "cluster_start_seconds": cluster_start, "seconds": seconds,
            "torch_threads_per_worker": sorted(threads.values()),
            "peak_rss_mib_per_worker": sorted(round(v / 2**20, 1) for v in peaks.values()), "out": out}


def label_differences(out_a, out_b, names):
    """Pixels whose labels differ between two output folders (fraction of all pixels), and in how many images."""
    from sklearn_ddpm.datasets import read_mask

    differing = total = images = 0
    for name in names:
        a, b = read_mask(out_a / f"{name}.png"), read_mask(out_b / f"{name}.png")
        count = int(np.count_nonzero(a != b))
        differing, total, images = differing + count, total + a.size, images + (count > 0)
    return {"pixel_fraction": differing / total, "images": images}


def measure_io(work, names):
    """Seconds per image of the CPU work around the model: reading the photo, writing its label PNG.

    Single-threaded, on the CLI's label maps, into a scratch folder: what every worker does for each
    image whatever its accelerator, so a GPU worker needs this much CPU time per image too.
    """
    from sklearn_ddpm._outputs._writers import PredictionWriter
    from sklearn_ddpm.datasets import read_image, read_mask

    writer = PredictionWriter(work / "out_io", overlay=False, uncertainty=False, class_names=["0", "1"],
                              n_estimators=1)
    labels = {n: read_mask(work / "out_cli" / f"{n}.png") for n in names}
    paths = sorted((work / "photos").iterdir())
    start = time.perf_counter()
    images = [read_image(p) for p in paths]
    read = (time.perf_counter() - start) / len(paths)
    start = time.perf_counter()
    for path, image in zip(paths, images):
        writer.write(path, image, labels[path.stem])
    write = (time.perf_counter() - start) / len(paths)
    return {"read_seconds_per_image": read, "write_labels_seconds_per_image": write}


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.device == "cuda":
        raise SystemExit("distributed_predict measures CPU workers; run it with --device cpu (the default here).")
    settings = QUICK if args.quick else FULL
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before = os.getloadavg()
    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images, fit_seconds = stage(work, settings)
        n = len(images["predict"])
        print(f"fitted on {settings['n_train']} images in {fit_seconds:.0f} s; segmenting {n} images")
        configs = ["cli"] + [f"dask_{k}_worker{'s' if k > 1 else ''}" for k in settings["workers"]]
        measured = {name: [] for name in configs}
        # On a shared machine the load drifts: every other repeat runs the configurations backwards.
        for repeat in range(settings["repeats"]):
            for name in (configs if repeat % 2 == 0 else configs[::-1]):
                load = round(os.getloadavg()[0], 2)
                if name == "cli":
                    result = run_cli(work, cores)
                else:
                    result = run_dask(work, int(name.split("_")[1]), settings["images_per_task"])
                    result["labels_differing_from_cli"] = label_differences(result.pop("out"), work / "out_cli",
                                                                            images["predict"])
                result["load_average_1min_before"] = load
                measured[name].append(result)
                print(f"{name}: {result['seconds']:.1f} s ({n / result['seconds']:.2f} img/s), load before {load}"
                      + (f", peak RSS per worker {result['peak_rss_mib_per_worker']} MiB" if name != "cli" else ""))
        io = measure_io(work, images["predict"])
    runs = {}
    for name, results in measured.items():
        seconds = float(np.mean([r["seconds"] for r in results]))
        runs[name] = {"images_per_second": n / seconds, "mean_seconds": seconds, "repeats": results}
        if name != "cli":
            runs[name]["ratio_to_cli"] = runs[name]["images_per_second"] / runs["cli"]["images_per_second"]
            runs[name]["max_label_pixel_fraction_differing_from_cli"] = max(
                r["labels_differing_from_cli"]["pixel_fraction"] for r in results)
            runs[name]["peak_rss_mib_per_worker"] = max(m for r in results for m in r["peak_rss_mib_per_worker"])
    for name, run in runs.items():
        print(f"{name}: {run['images_per_second']:.2f} img/s" +
              (f" (x{run['ratio_to_cli']:.2f} the CLI)" if "ratio_to_cli" in run else ""))
    payload = {
        "quick": args.quick, "settings": settings, "images": images, "fit_seconds": fit_seconds,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": "each configuration run `repeats` times, every other repeat in reverse order, on a machine "
                "shared with other work (see the load averages); images_per_second = images / mean seconds; "
                "the CLI's time includes interpreter start and model load, the Dask runs' times include every "
                "worker's model load but not the cluster start",
        "runs": runs,
        "io": io,
    }
    return _common.write_json(NAME, payload, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
