"""The training loop of :func:`train_ddpm`: resumable, with EMA weights and mixed precision (bf16 on CPUs)."""

import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DModel
from diffusers.training_utils import EMAModel
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from tqdm.auto import tqdm

from ..backbone._schedule import noise_scheduler
from ..utils._devices import cpu_has_fast_bf16, cpu_name
from ..utils._atomic import atomic_write
from . import _distributed
from ._checkpoints import CHECKPOINT_DIR, list_checkpoints, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ._data import load_images, sample_batch
from ._export import export_run
from ._presets import PRESETS, get_preset

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


@validate_params(
    {
        "images": [str, os.PathLike, "array-like"],
        "output_dir": [str, os.PathLike],
        "preset": [StrOptions(set(PRESETS))],
        "image_size": [_POSITIVE_INT, None],
        "max_steps": [_POSITIVE_INT],
        "max_minutes": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [_POSITIVE_INT, None],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="neither")],
        "checkpoint_every": [_POSITIVE_INT],
        "keep_checkpoints": [_POSITIVE_INT],
        "resume": ["boolean"],
        "device": [str, torch.device],
        "mixed_precision": [StrOptions({"auto", "no", "bf16", "fp16"})],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "progress": ["boolean"],
        "num_threads": [_POSITIVE_INT, None],
    },
    prefer_skip_nested_validation=True,
)
def train_ddpm(
    images,
    output_dir,
    *,
    preset="64",
    image_size=None,
    max_steps=10_000,
    max_minutes=None,
    batch_size=None,
    lr=2e-4,
    lr_warmup_steps=200,
    weight_decay=0.0,
    ema_decay=0.9999,
    checkpoint_every=250,
    keep_checkpoints=2,
    resume=True,
    device="cpu",
    mixed_precision="auto",
    random_state=0,
    progress=True,
    num_threads=None,
):
    """Train an unconditional DDPM on a set of images, resumably.

    A diffusers ``UNet2DModel`` (an ADM-like preset, see
    :mod:`sklearn_ddpm.ddpm_training._presets`) learns to predict the noise ε of
    ``DDPMScheduler.add_noise`` under the paper's schedule (linear betas 1e-4..0.02, 1000 steps),
    with AdamW, gradient clipping at 1, a linear learning-rate warm-up, and an exponential moving
    average of the weights (diffusers ``EMAModel`` with its warm-up, so short runs are not
    dominated by the initial weights). Each sample is a random crop (at least 60 % of the image
    area, aspect ratio jittered by up to 4/3) resized to the square model input, flipped
    horizontally with probability 1/2.

    Every ``checkpoint_every`` steps the model, EMA, optimizer, step counter and all random
    states are written atomically to ``output_dir/checkpoints/``. Calling the function again
    with the same arguments continues from the latest checkpoint and produces the same weights
    as an uninterrupted run (on the same device and thread count). Raising ``max_steps`` on a
    later call continues training.

    Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) or in a process group the
    caller initialised, training is data-parallel: the UNet is wrapped in
    ``DistributedDataParallel`` (gloo on the CPU, NCCL on CUDA with one GPU per process), every
    rank draws the random numbers of the whole global batch from the shared seed and builds only
    its slice of ``batch_size / world_size`` samples, and the averaged gradient is the
    single-process gradient of the same batch up to floating-point summation order. Rank 0
    alone writes checkpoints, ``train_log.csv``, ``train_info.json`` and the export, and
    decides when ``max_minutes`` is spent; every rank resumes from rank 0's checkpoint.

    Parameters
    ----------
    images : str, path-like or list
        A folder (its images as :func:`sklearn_ddpm.datasets.list_images` finds them, converted
        to RGB and EXIF-transposed), or a list of HxWx3 ``uint8`` arrays and/or image paths, of
        any sizes.
    output_dir : str or path-like
        Receives ``checkpoints/``, ``train_log.csv`` (step, loss, learning rate, seconds) and, at
        the end (also when ``max_minutes`` or Ctrl-C stops the run), the ``DDPMPipeline.save_pretrained``
        folder of the EMA model (``model_index.json``, ``unet/``, ``scheduler/``) with
        ``train_info.json``, the record of the exported step, and ``README.md``, its model card
        (:func:`export_run`).
    preset : {"64", "128", "256", "tiny"}, default="64"
        UNet configuration, default resolution and default batch size.
    image_size : int, optional
        Override of the preset's square training resolution (a multiple of
        ``2 ** (number of levels - 1)``).
    max_steps : int, default=10000
        Total optimizer steps, counting those of earlier (resumed) calls.
    batch_size : int, optional
        The global batch: samples per optimizer step over all processes of a data-parallel run
        (each of the ``world_size`` processes computes ``batch_size / world_size`` of them; a
        size that does not divide is refused). Defaults to the preset's.
    lr : float, default=2e-4
        AdamW learning rate after the warm-up.
    lr_warmup_steps : int, default=200
        Steps of linear learning-rate warm-up (0 disables it).
    weight_decay : float, default=0.0
        AdamW weight decay (ADM uses none).
    ema_decay : float, default=0.9999
        Upper bound of the EMA decay; the warm-up schedule ``1 - (1 + step) ** (-2/3)`` lowers it
        early in training.
    max_minutes : float, default=None
        Time budget of this call: when it is spent, training checkpoints, stops and exports the
        model as if ``max_steps`` had been reached (re-running continues from there).
    checkpoint_every : int, default=250
        Steps between checkpoints; one is also written at the last step.
    keep_checkpoints : int, default=2
        How many of the newest checkpoints to keep.
    resume : bool, default=True
        Continue from the latest checkpoint in ``output_dir`` if one exists. ``False`` deletes
        existing checkpoints and starts afresh.
    device : str or torch.device, default="cpu"
        Under ``torchrun``, ``"cuda"`` without an index means ``cuda:LOCAL_RANK`` for each process.
    mixed_precision : {"auto", "no", "bf16", "fp16"}, default="auto"
        Autocast of the UNet's forward pass; the weights, optimizer, EMA and checkpoints stay
        fp32. On CUDA "auto" is bf16 where supported, else fp16 with gradient scaling. On the CPU
        "auto" is bf16 where the CPU has native bf16 instructions (AVX512-BF16 or AMX), else fp32
        ("no"); "bf16" forces it and "fp16" is refused. bf16 on the CPU is faster per step with
        the same loss curve (``benchmarks/cpu_training.py``); "no" keeps the fp32 path.
    random_state : int, default=0
        Seeds the initial weights, data sampling, augmentation, noise and timesteps. An integer
        only (no ``None`` or ``RandomState``): a resumed run restores the generators it seeds.
    progress : bool, default=True
        Show a tqdm progress bar with the running loss (on rank 0 only).
    num_threads : int, optional
        ``torch.set_num_threads`` for the run (e.g. 1 to leave cores free).

    Returns
    -------
    output_dir : pathlib.Path
        The pipeline folder (on every rank, once rank 0 has written it), loadable with ``diffusers.DDPMPipeline.from_pretrained`` or
        ``UNet2DModel.from_pretrained(output_dir, subfolder="unet")``.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import train_ddpm
    >>> train_ddpm("photos/", "runs/my_ddpm", preset="64", max_steps=20000)  # doctest: +SKIP
    PosixPath('runs/my_ddpm')
    """
    spec = get_preset(preset)
    image_size = spec["image_size"] if image_size is None else int(image_size)
    n_levels = len(spec["unet"]["block_out_channels"])
    if image_size % 2 ** (n_levels - 1):
        raise ValueError(
            f"image_size={image_size} must be a multiple of {2 ** (n_levels - 1)} for preset {preset!r}."
        )
    batch_size = spec["batch_size"] if batch_size is None else int(batch_size)
    world_size = _distributed.world_size()
    if batch_size % world_size:
        raise ValueError(
            f"batch_size={batch_size} is the global batch, split evenly over the {world_size} "
            f"processes of this run; choose a multiple of {world_size}."
        )
    max_steps, checkpoint_every, keep_checkpoints = int(max_steps), int(checkpoint_every), int(keep_checkpoints)
    lr_warmup_steps, random_state = int(lr_warmup_steps), int(random_state)
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available.")
    amp_dtype = _autocast_dtype(mixed_precision, device)
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))

    output_dir = Path(output_dir)
    ckpt_dir = output_dir / CHECKPOINT_DIR
    ctx, device = _distributed.setup(device)
    try:
        return _train(
            ctx, images, output_dir, ckpt_dir, spec=spec, preset=preset, image_size=image_size,
            max_steps=max_steps, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
            lr_warmup_steps=lr_warmup_steps, weight_decay=weight_decay, ema_decay=ema_decay,
            checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, resume=resume,
            device=device, amp_dtype=amp_dtype, random_state=random_state, progress=progress,
        )
    finally:
        _distributed.teardown(ctx)


def _train(ctx, images, output_dir, ckpt_dir, *, spec, preset, image_size, max_steps, max_minutes,
           batch_size, lr, lr_warmup_steps, weight_decay, ema_decay, checkpoint_every,
           keep_checkpoints, resume, device, amp_dtype, random_state, progress):
    # This rank's rows of the global batch.
    per_rank = batch_size // ctx.world_size
    rows = slice(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)
    if ctx.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    unet_kwargs = dict(spec["unet"], sample_size=image_size)
    hparams = dict(
        preset=preset, image_size=image_size, batch_size=batch_size, lr=float(lr),
        lr_warmup_steps=lr_warmup_steps, weight_decay=float(weight_decay),
        ema_decay=float(ema_decay), random_state=random_state,
    )

    pil_images = load_images(images, image_size)

    ckpt = None
    if ctx.is_main:
        existing = list_checkpoints(ckpt_dir)
        if existing and not resume:
            warnings.warn(f"resume=False: deleting {len(existing)} checkpoint(s) in {ckpt_dir}.", UserWarning)
            for f in existing:
                f.unlink()
            existing = []
        ckpt = load_checkpoint(ckpt_dir) if existing else None
    # Sent, not re-read, so that all ranks resume from the same file even when rank 0 is the only
    # one that sees output_dir (another node's disk) or a newer checkpoint appears meanwhile.
    ckpt = _distributed.broadcast_object(ckpt, ctx)

    cuda_devices = [device] if device.type == "cuda" else []
    # The run seeds and advances torch's global RNG (weights init, dropout); keep the caller's.
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(random_state)
        model = UNet2DModel(**unet_kwargs)
        np_rng = np.random.default_rng(random_state)
        gen = torch.Generator().manual_seed(random_state)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        start_step, train_seconds, sessions, log_rows = 0, 0.0, [], []
        ema_state = None
        if ckpt is not None:
            if ckpt["unet_kwargs"] != unet_kwargs:
                raise ValueError(
                    f"The checkpoint in {ckpt_dir} was trained with a different model "
                    f"(preset/image_size); use another output_dir or resume=False."
                )
            changed = {k: (ckpt["hparams"].get(k), v) for k, v in hparams.items() if ckpt["hparams"].get(k) != v}
            if changed and ctx.is_main:
                warnings.warn(f"Resuming with changed settings (old, new): {changed}", UserWarning)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            ema_state = ckpt["ema"]
            start_step = int(ckpt["step"])
            train_seconds = float(ckpt["train_seconds"])
            sessions = list(ckpt["sessions"])
            log_rows = list(ckpt["log"])
            set_rng_state(ckpt["rng"], np_rng, gen)
        # The weights are initialised alike on all ranks; dropout then draws per rank.
        own_rng = (ckpt or {}).get("rank_rng") or []
        if ctx.rank < len(own_rng):
            _distributed.set_local_rng_state(own_rng[ctx.rank], device)
        elif ctx.rank > 0:
            torch.manual_seed(_distributed.rank_seed(random_state, ctx.rank, start_step))
        model.to(device).train()
        for group in optimizer.param_groups:
            group["lr"] = lr  # a resumed run takes the lr it is given
        _optimizer_to(optimizer, device)
        ema = EMAModel(model.parameters(), decay=ema_decay, use_ema_warmup=True, foreach=True)
        if ema_state is not None:
            ema.load_state_dict(ema_state)
            ema.decay = float(ema_decay)
        ema.to(device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        if ckpt is not None and ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        scheduler = noise_scheduler()
        sessions.append({"start_step": start_step, "end_step": start_step, "device": str(device),
                         "threads": torch.get_num_threads(), "world_size": ctx.world_size,
                         "autocast": str(amp_dtype).replace("torch.", "") if amp_dtype else "float32",
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                         "cpu": cpu_name(), "cpu_seconds": 0.0})
        # Process CPU time (all threads), the cost a CPU user pays; wall time on a shared machine overstates it.
        cpu_t0 = time.process_time()
        unet = model
        if ctx.enabled:
            # Wrapped after the optimizer and EMA hold the UNet's own parameters; DDP averages the
            # gradients in backward(), and broadcasts rank 0's weights once here.
            model = torch.nn.parallel.DistributedDataParallel(
                unet, device_ids=[device.index] if device.type == "cuda" else None
            )

        def save(step):
            # Collective: every rank sends the generator states only it holds.
            rank_rng = _distributed.gather_object(_distributed.local_rng_state(device), ctx)
            if not ctx.is_main:
                return
            state = {
                "step": step,
                "unet_kwargs": unet_kwargs,
                "hparams": hparams,
                "model": unet.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "rng": rng_state(np_rng, gen),
                "rank_rng": rank_rng if ctx.enabled else None,
                "train_seconds": train_seconds,
                "sessions": sessions,
                "log": log_rows,
                "n_images": len(pil_images),
            }
            save_checkpoint(state, ckpt_dir, keep=keep_checkpoints)
            # train_info.json is the export's record, written with it (export_run): one step for both.
            _write_log(output_dir, log_rows)

        # With a time budget the bar counts its seconds (the step count's estimate would be wrong
        # when the budget ends the run) and shows the steps beside them.
        budget_s = None if max_minutes is None else 60.0 * float(max_minutes)
        bar = tqdm(
            total=max_steps if budget_s is None else budget_s, initial=start_step if budget_s is None else 0,
            disable=not (progress and ctx.is_main), desc="train-ddpm" if budget_s is None else "train-ddpm (time budget)",
            bar_format=None if budget_s is None else "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
            unit="step", mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True,
        )
        running, loss_sum, n_sum = None, None, 0
        t_last = time.perf_counter()
        t_start = time.monotonic()
        deadline = None if budget_s is None else t_start + budget_s
        saved_step, stopped_by = start_step, None
        ctrl_c = _CtrlC()
        try:
            for step in range(start_step, max_steps):
                if lr_warmup_steps:
                    for group in optimizer.param_groups:
                        group["lr"] = lr * min(1.0, (step + 1) / lr_warmup_steps)
                # Every rank draws the whole batch's noise and timesteps (cheap) and keeps its rows,
                # so the shared generators stay in step.
                x0 = sample_batch(pil_images, np_rng, batch_size, image_size, rows).to(device)
                noise = torch.randn((batch_size, *x0.shape[1:]), generator=gen)[rows].to(device)
                t = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=gen)[rows].to(device)
                xt = scheduler.add_noise(x0, noise, t)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    pred = model(xt, t).sample
                loss = torch.nn.functional.mse_loss(pred.float(), noise)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                # On every rank: the weights are identical after the step, so are the EMAs, and rank 0
                # would be the straggler at the next all-reduce if it alone did this work.
                ema.step(unet.parameters())

                # Reading the loss synchronises a GPU, so it is summed on the device and read every
                # 10 steps (and before each checkpoint, so a diverged run is never saved).
                loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
                n_sum += 1
                done = step + 1
                if budget_s is None:
                    bar.update(1)
                else:
                    bar.update(min(budget_s, time.monotonic() - t_start) - bar.n)
                    bar.set_postfix_str(f"step {done}/{max_steps}" + ("" if running is None else f", loss={running:.4f}"),
                                        refresh=False)
                now = time.perf_counter()
                train_seconds += now - t_last
                t_last = now
                # Rank 0's clock and Ctrl-C decide; the others must stop at the same step or the next
                # all-reduce would wait for ever.
                if ctx.enabled or ctrl_c.pressed:
                    if _distributed.rank0_flag(ctrl_c.pressed, ctx, device):
                        stopped_by = "interrupt"
                if deadline is not None and stopped_by is None:
                    if _distributed.rank0_flag(time.monotonic() > deadline, ctx, device):
                        stopped_by = "time"
                out_of_time = stopped_by is not None
                if done % 10 == 0 or done == max_steps or done % checkpoint_every == 0 or out_of_time:
                    # Each rank's loss is the mean over its equal share, so their mean is the batch's.
                    mean = _distributed.sum_over_ranks(loss_sum, ctx).item() / n_sum / ctx.world_size
                    if not math.isfinite(mean):
                        raise RuntimeError(
                            f"Training diverged before step {done} (loss={mean}); lower lr or resume "
                            f"from an earlier checkpoint."
                        )
                    log_rows.append((done, mean, optimizer.param_groups[0]["lr"], round(train_seconds, 2)))
                    running = mean if running is None else 0.8 * running + 0.2 * mean
                    if budget_s is None:
                        bar.set_postfix(loss=f"{running:.4f}", refresh=False)
                    loss_sum, n_sum = None, 0
                if done % checkpoint_every == 0 or done == max_steps or out_of_time:
                    sessions[-1]["end_step"] = done
                    sessions[-1]["cpu_seconds"] = round(time.process_time() - cpu_t0, 1)
                    with ctrl_c.deferred():  # a second Ctrl-C must not cut a checkpoint short
                        save(done)
                    saved_step = done
                    t_last = time.perf_counter()  # checkpoint I/O is not training time
                if out_of_time:
                    break
        finally:
            ctrl_c.restore()
        bar.close()
    if ctx.is_main:
        with ctrl_c.deferred():
            export_run(output_dir)
    _distributed.barrier(ctx)  # no rank returns before the model it trained is on disk
    if stopped_by == "interrupt":
        raise TrainDDPMInterrupted(saved_step, Path(output_dir))
    return output_dir


class TrainDDPMInterrupted(KeyboardInterrupt):
    """Ctrl-C ended :func:`train_ddpm` at a step boundary, after a checkpoint of that step and its export.

    Attributes
    ----------
    step : int
        The last optimizer step taken, the step of the checkpoint and of the exported model.
    output_dir : pathlib.Path
        The run's folder; calling :func:`train_ddpm` again on it continues from ``step``.
    """

    def __init__(self, step, output_dir):
        super().__init__(f"interrupted at step {step}: checkpoint saved in {output_dir / CHECKPOINT_DIR}, the model "
                         f"of that step exported to {output_dir}")
        self.step, self.output_dir = step, output_dir


class _CtrlC:
    """Turns the first Ctrl-C (SIGINT) of a training loop into a flag read at the next step boundary.

    A ``KeyboardInterrupt`` raised inside a step could leave the weights updated and the EMA not,
    so the checkpoint would not be a state an uninterrupted run passes through. A second Ctrl-C
    raises at once (the default handler is back), except while a checkpoint or the export is
    being written (:meth:`deferred`). Outside the main thread signals cannot be caught: no-op.
    """

    def __init__(self):
        self.pressed = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame):
        self.pressed = True
        self.restore()

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    @contextlib.contextmanager
    def deferred(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        held = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        if held:
            self.pressed = True


def _autocast_dtype(mixed_precision, device):
    if device.type != "cuda":
        if mixed_precision == "fp16" or (mixed_precision == "bf16" and device.type != "cpu"):
            allowed = "'auto', 'no' or 'bf16'" if device.type == "cpu" else "'auto' or 'no'"
            raise ValueError(f"mixed_precision={mixed_precision!r} is not supported on {device.type}; use {allowed}.")
        if mixed_precision == "bf16" or (mixed_precision == "auto" and cpu_has_fast_bf16()):
            return torch.bfloat16
        return None
    if mixed_precision == "no":
        return None
    if mixed_precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mixed_precision == "bf16" else torch.float16


def _optimizer_to(optimizer, device):
    for state in optimizer.state.values():
        for k, v in state.items():
            if torch.is_tensor(v):
                state[k] = v.to(device)


def _write_log(output_dir, rows):
    with atomic_write(Path(output_dir) / "train_log.csv", "w") as fh:
        fh.write("step,loss,lr,train_seconds\n")
        fh.writelines(f"{s},{l:.6f},{lr:.3g},{t}\n" for s, l, lr, t in rows)
