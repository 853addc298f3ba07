"""Training steps per second of ``train_ddpm`` with 1 and 2 gloo processes (``torchrun``) at the same global batch, and the DDP overhead.

Every configuration is one ``sklearn-ddpm train-ddpm`` command line (``sklearn_ddpm.cli.main``)
of the same preset, global batch, seed and images: the single-process ones in this process, the
2-process one under ``torchrun --nproc_per_node 2`` on 127.0.0.1, where this script is each
rank's program (it joins the gloo group, runs the same command, then times the all-reduce).
The figure is the training seconds that rank 0 logs in ``train_log.csv`` (checkpoint I/O and
export excluded) between the first logged step, which carries the one-off costs, and the last:

* ``1proc_same_cores``: one process, ``2 x --threads`` torch threads (the cores the 2-process run uses);
* ``1proc``: one process, ``--threads`` threads, the whole batch;
* ``1proc_half_batch``: one process, ``--threads`` threads, half the batch -- the work of one rank
  of the 2-process run without any communication;
* ``2proc``: two processes (gloo, DistributedDataParallel), ``--threads`` threads each.

The DDP overhead is the 2-process step time minus the half-batch step time (communication,
waiting for the slower rank, and the two processes competing for memory bandwidth), and,
separately, the time of one gloo all-reduce of a float32 tensor the size of the UNet's
gradients between two processes (median of ``--allreduce-reps``). The load average before and
after each run is recorded: on a shared machine other jobs change every figure.

Examples
--------
    python benchmarks/ddp_training.py                 # preset 64, global batch 8, 12 steps per run
    python benchmarks/ddp_training.py --quick         # tiny preset, seconds (smoke test)
"""

import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

NAME = "ddp_training"


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--preset", default="64", choices=["64", "128", "256", "tiny"])
    p.add_argument("--batch-size", type=int, default=8, help="global batch of every run (default: 8)")
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per run (default: 12)")
    p.add_argument("--warmup-steps", type=int, default=4,
                   help="steps before the timed interval, with the one-off costs (default: 4)")
    p.add_argument("--n-images", type=int, default=16, help="unlabeled photos to sample from (default: 16)")
    p.add_argument("--allreduce-reps", type=int, default=20)
    # Internal: this script as a torchrun rank: train with the CLI arguments in the JSON file, then time
    # the all-reduce of that many floats and write it to OUT.
    p.add_argument("--rank-worker", nargs=3, metavar=("CLI_ARGS_JSON", "N_FLOATS", "OUT"), default=None,
                   help="(internal)")
    return p


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(nproc):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]


def _env(threads):
    # OMP_NUM_THREADS before torch starts, as torchrun would set it; --threads sets torch's too.
    return dict(os.environ, PYTHONPATH=str(_common.REPO_ROOT), OMP_NUM_THREADS=str(threads),
                GLOO_SOCKET_IFNAME="lo")


def _loadavg():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def run_config(name, nproc, threads, batch_size, args, image_dir, work, device, n_params):
    """One training run; returns the record's row (and, for 2 processes, the all-reduce timing)."""
    from sklearn_ddpm.cli import main as cli

    out = Path(work) / name
    train = ["train-ddpm", str(image_dir), str(out), "--preset", args.preset, "--batch-size", str(batch_size),
             "--max-steps", str(args.steps), "--checkpoint-every", str(args.warmup_steps), "--threads", str(threads),
             "--device", device, "--quiet"]
    allreduce = None
    load_before = _loadavg()
    started = time.perf_counter()
    if nproc == 1:
        with _common.torch_threads(threads):
            if cli(train):
                raise RuntimeError(f"{name} failed")
    else:
        cli_args = Path(work) / f"{name}.json"
        cli_args.write_text(json.dumps(train))
        timing = Path(work) / f"{name}-allreduce.json"
        cmd = [*_torchrun(nproc), str(Path(__file__).resolve()), "--rank-worker", str(cli_args), str(n_params),
               str(timing), "--allreduce-reps", str(args.allreduce_reps)]
        proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        allreduce = json.loads(timing.read_text())
    wall = time.perf_counter() - started
    with open(out / "train_log.csv") as fh:
        log = {int(r["step"]): float(r["train_seconds"]) for r in csv.DictReader(fh)}
    first, last = args.warmup_steps, args.steps
    seconds = log[last] - log[first]
    row = {"config": name, "processes": nproc, "threads_per_process": threads, "global_batch": batch_size,
           "batch_per_process": batch_size // nproc, "timed_steps": last - first,
           "timed_interval": [first, last], "seconds_per_step": seconds / (last - first),
           "steps_per_second": (last - first) / seconds, "wall_seconds": round(wall, 1),
           "load_average_before": load_before, "load_average_after": _loadavg()}
    return row, allreduce


def rank_worker(cli_args_json, n_floats, out, reps):
    """A torchrun rank: join the gloo group, train through the CLI, then time ``reps`` all-reduces.

    The group is this function's, so ``train_ddpm`` uses it and leaves it open for the timing.
    """
    import statistics

    import torch
    import torch.distributed as dist

    from sklearn_ddpm.cli import main as cli

    dist.init_process_group("gloo")
    rc = cli(json.loads(Path(cli_args_json).read_text()))
    if rc:
        raise SystemExit(rc)
    grad = torch.ones(int(n_floats))
    times = []
    for i in range(reps + 3):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(grad)
        if i >= 3:  # the first ones set up the connections
            times.append(time.perf_counter() - start)
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps({"median_seconds": statistics.median(times), "min_seconds": min(times),
                                         "max_seconds": max(times), "reps": reps}))
    dist.destroy_process_group()


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.rank_worker:
        rank_worker(*args.rank_worker, reps=args.allreduce_reps)
        return None
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    if device != "cpu":
        # Two processes on one GPU would measure contention, not data parallelism.
        print(f"{NAME}: the gloo CPU comparison only; not measured on {device}")
        return _common.write_json(NAME, {"status": f"not measured on {device} (CPU/gloo benchmark)",
                                         "device": device}, args.out)
    if args.quick:
        args.preset, args.batch_size, args.steps, args.warmup_steps, args.n_images = "tiny", 4, 4, 2, 4
        args.allreduce_reps = 3
    if args.batch_size % 2:
        raise SystemExit("--batch-size must be even: it is split over 2 processes.")
    threads = args.threads or 1

    from PIL import Image

    from sklearn_ddpm.ddpm_training import get_preset

    images, _, source = _common.horse_data("unlabeled", args.n_images, with_masks=False)
    configs = [
        ("1proc_same_cores", 1, 2 * threads, args.batch_size),
        ("1proc", 1, threads, args.batch_size),
        ("1proc_half_batch", 1, threads, args.batch_size // 2),
        ("2proc", 2, threads, args.batch_size),
    ]
    import torch
    from diffusers import UNet2DModel

    spec = get_preset(args.preset)
    with torch.random.fork_rng():
        n_params = sum(p.numel() for p in UNet2DModel(**spec["unet"], sample_size=spec["image_size"]).parameters())
    rows, allreduce = [], None
    with _common.torch_threads(threads), tempfile.TemporaryDirectory() as work:
        image_dir = Path(work) / "images"
        image_dir.mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(image_dir / f"{i:04d}.png")
        for config in configs:
            row, timing = run_config(*config, args, image_dir, work, device, n_params)
            rows.append(row)
            allreduce = timing or allreduce
            print(f"{row['config']}: {row['seconds_per_step']:.3f} s/step (load {row['load_average_before']} -> "
                  f"{row['load_average_after']})", flush=True)

    by = {r["config"]: r for r in rows}
    two = by["2proc"]
    overhead = two["seconds_per_step"] - by["1proc_half_batch"]["seconds_per_step"]
    summary = {
        "speedup_2proc_vs_1proc_same_cores": by["1proc_same_cores"]["seconds_per_step"] / two["seconds_per_step"],
        "speedup_2proc_vs_1proc_same_threads_per_process": by["1proc"]["seconds_per_step"] / two["seconds_per_step"],
        "ddp_overhead_seconds_per_step": overhead,
        "ddp_overhead_fraction_of_2proc_step": overhead / two["seconds_per_step"],
        "allreduce_gradient_floats": n_params,
        "allreduce_seconds_median": allreduce["median_seconds"],
        "allreduce_fraction_of_2proc_step": allreduce["median_seconds"] / two["seconds_per_step"],
    }
    _common.print_table(rows, ["config", "processes", "threads_per_process", "batch_per_process",
                               "seconds_per_step", "steps_per_second", "load_average_before"],
                        title=f"train_ddpm preset {args.preset}, global batch {args.batch_size} (cpu, gloo)")
    for k, v in summary.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    payload = {
        "device": device, "backend": "gloo", "quick": args.quick, "data": source,
        "settings": {"preset": args.preset, "global_batch": args.batch_size, "steps": args.steps,
                     "warmup_steps": args.warmup_steps, "threads_per_process": threads,
                     "n_images": args.n_images, "allreduce_reps": args.allreduce_reps},
        "rows": rows, "summary": summary, "allreduce": allreduce,
        "note": ("rank 0's logged training seconds between the warm-up steps and the last step; one run "
                 "per configuration on a machine other jobs share (see the load averages)"),
    }
    path = _common.write_json(NAME, payload, args.out)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
