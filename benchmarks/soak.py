"""Soak run of ``sklearn-ddpm predict --workers 2`` on a flaky local cluster: does any image get lost?

Many small images are segmented by the CLI on a Dask ``LocalCluster`` of 2 worker processes (on
127.0.0.1, the CLI's own cluster) while this script kills a random worker process (SIGKILL, as a
crash or the kernel's OOM killer would) every few seconds; the nanny restarts it and the restarted
worker loads the model again. Once, when about 40% of the images are done, the run itself is
interrupted (SIGINT, a user's Ctrl-C) and then resumed with ``--resume`` under the same faults.

Recorded: every kill and the interrupt, each phase's wall time, and the completeness of the
outputs after the faulty phases: every image has exactly one label file, each decodes whole and has
the image's size, no image is missing, no other file and no temporary file is left; the labels are
compared with a quiet run (the same command, no faults) pixel by pixel. Throughput under faults
(images / the faulty phases' wall time, the interrupted phase and the resume together) is set
against the quiet run's. Should the faulty resume not finish (``--max-minutes`` per phase), a last
``--resume`` without faults completes the folder and the check is repeated: images then missing
were not lost, only not reached, and files left broken would show there.

A worker restart (a fresh process importing torch and loading the model) takes tens of seconds on a
loaded machine; kills more frequent than that leave the cluster restarting most of the time, so the
kill interval is an option (``--kill-every MIN MAX`` seconds).

The model is a tiny random-init UNet with a 2-member ensemble fitted on synthetic squares: the
question is fault tolerance, not accuracy, and it keeps 2,000 images within minutes on 2 cores.

Examples
--------
    python benchmarks/soak.py                      # 2,000 images of 32x32
    python benchmarks/soak.py --n-images 600       # fewer, on a busy machine
    python benchmarks/soak.py --quick              # 40 images, one kill: a smoke test
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import _common

NAME = "soak"
FULL = {"n_images": 2000, "size": 32, "images_per_task": 8, "kill_every_seconds": (4.0, 10.0),
        "interrupt_at_fraction": 0.4, "workers": 2}
QUICK = {"n_images": 40, "size": 32, "images_per_task": 4, "kill_every_seconds": (2.0, 3.0),
         "interrupt_at_fraction": 0.4, "workers": 2}


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--n-images", type=int, default=None, help="images to segment (default: 2000; --quick: 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the images and of the kill schedule")
    p.add_argument("--max-minutes", type=float, default=60.0, help="give up a phase after this long (recorded)")
    p.add_argument("--kill-every", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="seconds between worker kills, drawn uniformly (default: 4 10; --quick: 2 3)")
    return p


def stage(work, settings, seed):
    """Write the images and fit the model (saved in the safe format, as `sklearn-ddpm fit` does)."""
    from PIL import Image

    from sklearn_ddpm import make_segmenter, save_segmenter
    from sklearn_ddpm.backbone import Backbone, tiny_unet

    rng = np.random.default_rng(seed)
    size = settings["size"]
    photos = work / "photos"
    photos.mkdir()
    for i in range(settings["n_images"]):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        image[y:y + size // 3, x:x + size // 3] += 150
        Image.fromarray(image).save(photos / f"img{i:05d}.png")
    images, masks = [], []
    for _ in range(4):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        image[y:y + size // 3, x:x + size // 3] += 150
        mask[y:y + size // 3, x:x + size // 3] = 1
        images.append(image)
        masks.append(mask)
    pipeline = make_segmenter(Backbone(tiny_unet(image_size=size), source="tiny_unet"), blocks=(3, 6), steps=(50,),
                              n_estimators=2, max_epochs=2, max_pixels_per_image=300, batch_size=8, random_state=0)
    save_segmenter(pipeline.fit(images, masks), work / "seg.skddpm")
    return sorted(p.stem for p in photos.iterdir())


def predict_command(work, out, settings, resume=False):
    script = Path(sys.executable).parent / "sklearn-ddpm"
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "sklearn_ddpm.cli"]
    return base + ["predict", str(work / "seg.skddpm"), str(work / "photos"), "-o", str(out),
                   "--workers", str(settings["workers"]), "--images-per-task", str(settings["images_per_task"]),
                   "--threads", "1", "--quiet"] + (["--resume"] if resume else [])


def worker_processes(root_pid):
    """The Dask worker processes under the CLI (the nanny's children running a worker), by pid."""
    import psutil

    try:
        descendants = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    workers = []
    for process in descendants:
        try:
            cmdline = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        # Nanny-spawned workers run multiprocessing's spawn_main; the resource tracker does not.
        if "spawn_main" in cmdline or "forkserver" in cmdline and "resource_tracker" not in cmdline:
            workers.append(process.pid)
    return workers


class Killer(threading.Thread):
    """Kills a random worker process under ``root_pid`` every ``interval`` seconds (uniform range).

    Armed once the phase writes its first label file, i.e. once the cluster runs: a worker killed while the
    CLI's cluster starts makes the whole command fail at once ("Nanny failed to start", exit
    status 2, before any image), which the first trial run of this script showed; that is a failed
    start, not a lost image, and is left out of the soak.
    """

    def __init__(self, interval, rng, log, start_time, out):
        super().__init__(daemon=True)
        self.interval, self.rng, self.log, self.start_time, self.out = interval, rng, log, start_time, out
        self.root_pid = None
        self.baseline = 0  # label files before the phase started
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(self.rng.uniform(*self.interval)):
            pid = self.root_pid
            if not pid or count_outputs(self.out) <= self.baseline:
                continue
            workers = worker_processes(pid)
            if not workers:
                continue
            victim = self.rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.log.append({"seconds": round(time.perf_counter() - self.start_time, 2), "pid": victim,
                             "workers_seen": len(workers)})


def count_outputs(out):
    return sum(1 for p in out.glob("*.png")) if out.is_dir() else 0


def run_phase(argv, out, n_images, killer=None, interrupt_at=None, max_seconds=3600.0):
    """Run the CLI once; optionally SIGINT it once ``interrupt_at`` label files exist. Returns a record."""
    start = time.perf_counter()
    # A session of its own: on a timeout the CLI and its cluster's processes are stopped together.
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    if killer is not None:
        killer.baseline = count_outputs(out)
        killer.root_pid = process.pid
    interrupted_after = None
    while process.poll() is None:
        time.sleep(0.2)
        if interrupt_at is not None and interrupted_after is None and count_outputs(out) >= interrupt_at:
            process.send_signal(signal.SIGINT)
            interrupted_after = {"seconds": round(time.perf_counter() - start, 2), "labels_written": count_outputs(out)}
        if time.perf_counter() - start > max_seconds:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            break
    else:
        timed_out = False
    stdout, stderr = process.communicate()
    if killer is not None:
        killer.root_pid = None
    return {"argv": " ".join(argv[argv.index("predict"):]), "seconds": round(time.perf_counter() - start, 2),
            "exit_status": process.returncode, "interrupted": interrupted_after, "timed_out": timed_out,
            "labels_after": count_outputs(out), "of": n_images,
            "stderr_tail": stderr.strip().splitlines()[-3:] if stderr.strip() else []}


def completeness(out, names, size, reference):
    """Every image: one whole label file of its size; nothing else left; labels against the quiet run."""
    from PIL import Image

    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    expected = {f"{name}.png" for name in names}
    leftovers = [f for f in files if f.startswith(".") or f.endswith(".tmp")]
    unexpected = sorted(set(files) - expected - set(leftovers))
    missing = sorted(expected - set(files))
    broken, differing_pixels, differing_images = [], 0, 0
    for name in sorted(n for n in names if f"{n}.png" not in missing):
        try:
            with Image.open(out / f"{name}.png") as image:
                image.load()
                labels = np.asarray(image)
        except Exception as exc:  # noqa: BLE001 - a broken file is what is counted here
            broken.append(f"{name}: {exc}")
            continue
        if labels.shape != (size, size):
            broken.append(f"{name}: shape {labels.shape}")
            continue
        ref = np.asarray(Image.open(reference / f"{name}.png"))
        count = int(np.count_nonzero(ref != labels))
        differing_pixels += count
        differing_images += count > 0
    return {"images": len(names), "label_files": len(expected) - len(missing), "missing": missing[:20],
            "n_missing": len(missing), "broken": broken[:20], "n_broken": len(broken),
            "temporary_files_left": leftovers[:20], "unexpected_files": unexpected[:20],
            "every_image_exactly_one_whole_output": not missing and not broken and not leftovers and not unexpected,
            "labels_differing_from_quiet_run": {"pixel_fraction": differing_pixels / (len(names) * size * size),
                                                "images": differing_images}}


def main(argv=None):
    args = build_parser().parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.n_images is not None:
        settings["n_images"] = args.n_images
    if args.kill_every is not None:
        settings["kill_every_seconds"] = tuple(args.kill_every)
    max_seconds = args.max_minutes * 60
    rng = random.Random(args.seed)
    with _common.torch_threads(args.threads or 1), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        names = stage(work, settings, args.seed)
        stage_seconds = time.perf_counter() - start
        n = len(names)
        print(f"{n} images of {settings['size']}x{settings['size']}, model fitted in {stage_seconds:.0f} s")

        load_quiet = os.getloadavg()[0]
        quiet = run_phase(predict_command(work, work / "quiet", settings), work / "quiet", n, max_seconds=max_seconds)
        quiet["load_average_1min_before"] = round(load_quiet, 2)
        print(f"quiet run: {quiet['seconds']:.0f} s, exit {quiet['exit_status']}")

        kills = []
        faulty_start = time.perf_counter()
        out = work / "faulty"
        killer = Killer(settings["kill_every_seconds"], rng, kills, faulty_start, out)
        killer.start()
        load_faulty = os.getloadavg()[0]
        interrupted = run_phase(predict_command(work, out, settings), out, n, killer,
                                interrupt_at=int(settings["interrupt_at_fraction"] * n), max_seconds=max_seconds)
        print(f"interrupted run: {interrupted['seconds']:.0f} s, {interrupted['labels_after']} of {n} labels, "
              f"{len(kills)} kills so far")
        resumed = run_phase(predict_command(work, out, settings, resume=True), out, n, killer,
                            max_seconds=max_seconds)
        killer.stop.set()
        killer.join()
        faulty_seconds = time.perf_counter() - faulty_start
        print(f"resumed run: {resumed['seconds']:.0f} s, exit {resumed['exit_status']}, {len(kills)} kills in all")
        check = completeness(out, names, settings["size"], work / "quiet")
        final = final_check = None
        if not check["every_image_exactly_one_whole_output"]:
            final = run_phase(predict_command(work, out, settings, resume=True), out, n, max_seconds=max_seconds)
            final_check = completeness(out, names, settings["size"], work / "quiet")
            print(f"fault-free resume: {final['seconds']:.0f} s, exit {final['exit_status']}, complete: "
                  f"{final_check['every_image_exactly_one_whole_output']}")
        quiet_check = completeness(work / "quiet", names, settings["size"], work / "quiet")

    record = {
        "settings": settings, "seed": args.seed, "stage_seconds": round(stage_seconds, 1),
        "quiet": quiet, "quiet_completeness": {k: quiet_check[k] for k in ("n_missing", "n_broken",
                                                                           "every_image_exactly_one_whole_output")},
        "faulty": {"interrupted_run": interrupted, "resumed_run": resumed, "kills": kills, "n_kills": len(kills),
                   "seconds_including_restarts": round(faulty_seconds, 2),
                   "load_average_1min_before": round(load_faulty, 2)},
        "completeness": check,
        "fault_free_resume": final, "completeness_after_fault_free_resume": final_check,
        "images_per_second": {"quiet": round(n / quiet["seconds"], 2),
                              "under_faults": round(n / (interrupted["seconds"] + resumed["seconds"]), 2)},
    }
    path = _common.write_json(NAME, record, out=args.out, device="cpu")
    _common.print_table(
        [{"run": "quiet", "seconds": quiet["seconds"], "img/s": record["images_per_second"]["quiet"],
          "kills": 0, "complete": quiet_check["every_image_exactly_one_whole_output"]},
         {"run": "faults + interrupt + resume", "seconds": round(interrupted["seconds"] + resumed["seconds"], 1),
          "img/s": record["images_per_second"]["under_faults"], "kills": len(kills),
          "complete": check["every_image_exactly_one_whole_output"]}],
        ["run", "seconds", "img/s", "kills", "complete"], title=f"soak: {n} images, 2 workers")
    print(f"record: {path}")
    return record


if __name__ == "__main__":
    main()
