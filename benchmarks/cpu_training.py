"""DDPM training on the CPU: bf16 autocast, channels_last, torch.compile and threads against fp32.

Two measurements, both on the same machine in the same run::

    python benchmarks/cpu_training.py [--quick] [--steps 300] [--chunks 3] [--compile] [--threads 1]

1. **Loss curves**: ``train_ddpm`` (preset 64, batch 8, the Weizmann ``unlabeled`` photos) with
   ``mixed_precision="no"`` (fp32) and ``"bf16"``, same seed, ``--steps`` steps each, trained in
   ``--chunks`` alternating pieces (each piece resumes its run, which continues exactly as an
   uninterrupted run would), so that both see the same machine load. Reported: the logged loss
   (mean of every 10 steps), its exponential moving average, and seconds per step from the runs'
   own ``train_seconds``.
2. **Step-time variants** of one optimizer step (forward under autocast, MSE loss, backward,
   gradient clipping, AdamW; no EMA or data augmentation), in alternating rounds: fp32, bf16,
   each with ``channels_last``, with 1 and 2 torch threads, and (``--compile``) bf16 with
   ``torch.compile``. Ratios are medians over rounds against fp32 with the same threads.

Timings on a shared machine are noisy: the JSON records the load average before and after.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import _common

NAME = "cpu_training"
EMA_WEIGHT = 0.9  # smoothing of the logged losses (one value every 10 steps)


def smoothed(values, weight=EMA_WEIGHT):
    """Exponential moving average of a loss curve (the first value starts it)."""
    out, running = [], None
    for v in values:
        running = v if running is None else weight * running + (1 - weight) * v
        out.append(running)
    return out


def training_images(n, quick):
    """Paths of ``n`` Weizmann ``unlabeled`` photos (never ``test``); random images without the data."""
    import json

    root = _common.DATA_DIR / "weizmann_horse"
    if quick or not (root / "splits.json").is_file():
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(8)], "random 40x48"
    names = json.loads((root / "splits.json").read_text())["unlabeled"][:n]
    return [root / "images" / f"{name}.jpg" for name in names], f"weizmann_horse/unlabeled[:{len(names)}]"


def loss_curves(images, settings, steps, chunks, work):
    """Train fp32 and bf16 runs in alternating chunks; their logs and seconds per step."""
    from sklearn_ddpm.ddpm_training import load_checkpoint, train_ddpm

    runs = {"fp32": "no", "bf16": "bf16"}
    bounds = [round(steps * (k + 1) / chunks) for k in range(chunks)]
    for k, stop in enumerate(bounds):
        order = list(runs) if k % 2 == 0 else list(runs)[::-1]
        for name in order:
            print(f"  {name}: to step {stop}", flush=True)
            train_ddpm(images, Path(work) / name, max_steps=stop, mixed_precision=runs[name], progress=False,
                       checkpoint_every=max(bounds), **settings)
    result = {}
    for name in runs:
        ckpt = load_checkpoint(Path(work) / name)
        log = ckpt["log"]
        losses = [row[1] for row in log]
        result[name] = {
            "autocast": ckpt["sessions"][-1]["autocast"],
            "log_steps": [row[0] for row in log],
            "loss": losses,
            "loss_ema": smoothed(losses),
            "seconds_per_step": ckpt["train_seconds"] / ckpt["step"],
        }
    return result


def step_variants(images, preset, batch_size, threads, rounds, steps_per_round, compile_):
    """Median seconds per optimizer step of each variant, measured in alternating rounds."""
    import torch
    from diffusers import UNet2DModel

    from sklearn_ddpm.backbone._schedule import noise_scheduler
    from sklearn_ddpm.ddpm_training._data import load_images, sample_batch
    from sklearn_ddpm.ddpm_training._presets import get_preset

    spec = get_preset(preset)
    size = spec["image_size"]
    pil = load_images(images, size)
    scheduler = noise_scheduler()
    variants = []
    for n in threads:
        for dtype in ("fp32", "bf16"):
            variants.append({"threads": n, "autocast": dtype, "channels_last": False, "compile": False})
            variants.append({"threads": n, "autocast": dtype, "channels_last": True, "compile": False})
        if compile_ and n == threads[0]:
            variants.append({"threads": n, "autocast": "bf16", "channels_last": False, "compile": True})

    def build(v):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            unet = UNet2DModel(**dict(spec["unet"], sample_size=size)).train()
        if v["channels_last"]:
            unet = unet.to(memory_format=torch.channels_last)
        model = torch.compile(unet) if v["compile"] else unet
        return unet, model, torch.optim.AdamW(unet.parameters(), lr=2e-4)

    def run(v, state, n_steps):
        unet, model, optimizer = state
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        amp = torch.bfloat16 if v["autocast"] == "bf16" else None
        with _common.torch_threads(v["threads"]):
            start = time.perf_counter()
            for _ in range(n_steps):
                x0 = sample_batch(pil, rng, batch_size, size, slice(0, batch_size))
                noise = torch.randn(x0.shape, generator=gen)
                t = torch.randint(0, 1000, (batch_size,), generator=gen)
                xt = scheduler.add_noise(x0, noise, t)
                if v["channels_last"]:
                    xt = xt.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
                    pred = model(xt, t).sample
                loss = torch.nn.functional.mse_loss(pred.float(), noise)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
                optimizer.step()
            return (time.perf_counter() - start) / n_steps

    states, warmup = [], []
    for v in variants:
        state = build(v)
        try:
            warmup.append(run(v, state, 1 if not v["compile"] else 2))  # one-off costs (compilation)
            states.append(state)
        except Exception as exc:  # e.g. no C++ compiler for inductor
            v["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            states.append(None)
            warmup.append(None)
    times = [[] for _ in variants]
    for r in range(rounds):
        order = range(len(variants)) if r % 2 == 0 else reversed(range(len(variants)))
        for i in order:
            if states[i] is not None:
                times[i].append(run(variants[i], states[i], steps_per_round))
    rows = []
    for v, ts, w in zip(variants, times, warmup):
        row = dict(v, seconds_per_step=statistics.median(ts) if ts else None, rounds=ts, first_step_seconds=w)
        rows.append(row)
    for row in rows:
        base = next(r for r in rows if r["threads"] == row["threads"] and r["autocast"] == "fp32"
                    and not r["channels_last"] and not r["compile"])
        row["speedup_vs_fp32"] = (base["seconds_per_step"] / row["seconds_per_step"]
                                  if row["seconds_per_step"] and base["seconds_per_step"] else None)
    return rows


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=300, help="optimizer steps of each loss curve")
    p.add_argument("--chunks", type=int, default=3, help="alternating pieces the loss-curve runs are trained in")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the step-time variants")
    p.add_argument("--steps-per-round", type=int, default=4)
    p.add_argument("--variant-threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--compile", action="store_true", help="also time bf16 with torch.compile (slow to compile)")
    p.add_argument("--n-images", type=int, default=168, help="unlabeled photos to train on")
    args = p.parse_args(argv)
    threads = args.threads or 1
    preset, batch_size = ("tiny", 4) if args.quick else ("64", 8)
    if args.quick:
        args.steps, args.chunks, args.rounds, args.steps_per_round = 20, 2, 1, 1
        args.variant_threads = [1]
    images, source = training_images(args.n_images, args.quick)
    load_before = os.getloadavg()
    settings = dict(preset=preset, batch_size=batch_size, random_state=0, num_threads=threads)
    if args.quick:
        settings["image_size"] = 16
    import torch

    from sklearn_ddpm.utils._devices import cpu_has_fast_bf16

    print(f"loss curves: preset {preset}, batch {batch_size}, {args.steps} steps, {threads} thread(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="cpu_training_") as work:
        curves = loss_curves(images, settings, args.steps, args.chunks, work)
    print("step-time variants", flush=True)
    variants = step_variants(images, preset, batch_size, args.variant_threads, args.rounds,
                             args.steps_per_round, args.compile)
    fp32, bf16 = curves["fp32"], curves["bf16"]
    last = max(1, len(fp32["loss"]) // 3)  # the last third of the logged means
    payload = {
        "data": source,
        "preset": preset,
        "batch_size": batch_size,
        "threads": threads,
        "cpu_has_fast_bf16": cpu_has_fast_bf16(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "shared machine: timings are noisy; ratios come from the same run, alternating",
        "loss_curves": curves,
        "loss_ema_weight": EMA_WEIGHT,
        "summary": {
            "steps": args.steps,
            "fp32_seconds_per_step": fp32["seconds_per_step"],
            "bf16_seconds_per_step": bf16["seconds_per_step"],
            "bf16_speedup": fp32["seconds_per_step"] / bf16["seconds_per_step"],
            "fp32_final_loss_ema": fp32["loss_ema"][-1],
            "bf16_final_loss_ema": bf16["loss_ema"][-1],
            "fp32_mean_loss_last_third": float(np.mean(fp32["loss"][-last:])),
            "bf16_mean_loss_last_third": float(np.mean(bf16["loss"][-last:])),
        },
        "step_variants": variants,
    }
    path = _common.write_json(NAME, payload, args.out, device="cpu")
    s = payload["summary"]
    _common.print_table(
        [{"run": name, "s/step": curves[name]["seconds_per_step"], "final loss EMA": curves[name]["loss_ema"][-1],
          "mean loss, last third": s[f"{name}_mean_loss_last_third"]} for name in curves],
        ["run", "s/step", "final loss EMA", "mean loss, last third"],
        title=f"train_ddpm on the CPU, {args.steps} steps, preset {preset}, batch {batch_size}",
    )
    _common.print_table(variants, ["threads", "autocast", "channels_last", "compile", "seconds_per_step",
                                   "speedup_vs_fp32"], title="one optimizer step (median over rounds)")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
