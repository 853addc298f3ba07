"""Train a small DDPM (diffusers ``UNet2DModel``) with checkpoints that survive interruption."""

import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ._presets import get_preset

CHECKPOINT_DIR = "checkpoints"
_CKPT_PREFIX = "step-"
_CKPT_SUFFIX = ".pt"
# Smallest crop, as a fraction of the image area, and the aspect-ratio jitter of a crop.
_MIN_CROP_AREA = 0.6
_MAX_ASPECT_JITTER = 4.0 / 3.0
# Images are kept in memory at this multiple of the model resolution (short side) so that random
# crops stay sharp without holding full-size photos.
_CACHE_SCALE = 1.5

SCHEDULER_KWARGS = dict(
    num_train_timesteps=1000,
    beta_start=1e-4,
    beta_end=0.02,
    beta_schedule="linear",
    prediction_type="epsilon",
    variance_type="fixed_small",
    clip_sample=True,
)


def make_scheduler():
    """Return the paper's noise schedule: linear betas 1e-4..0.02 over 1000 steps, ε-prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULER_KWARGS)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def _list_image_files(folder):
    from ..datasets._io import image_extensions

    exts = image_extensions()
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in exts)
    if not files:
        raise ValueError(f"No image files Pillow can read were found in {folder}.")
    return files


def _as_pil(item, index, image_size):
    from ..datasets._io import read_image

    if isinstance(item, (str, os.PathLike)):
        arr = read_image(item)
    else:
        arr = np.asarray(item)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(
                f"images[{index}] must be an HxWx3 uint8 array, got shape {arr.shape} and dtype "
                f"{arr.dtype}."
            )
    img = Image.fromarray(arr)
    short = min(img.size)
    target = int(round(_CACHE_SCALE * image_size))
    if short > target:
        scale = target / short
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.LANCZOS)
    return img


def _load_images(images, image_size):
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise NotADirectoryError(f"images must be a folder of images or a list; {folder} is not a folder.")
        images = _list_image_files(folder)
    images = list(images)
    if not images:
        raise ValueError("images is empty; train_ddpm needs at least one image.")
    return [_as_pil(item, i, image_size) for i, item in enumerate(images)]


def _augment(img, rng, image_size):
    """Random crop (area >= 60 %, aspect jitter), resized to the square input, random flip."""
    w, h = img.size
    area = rng.uniform(_MIN_CROP_AREA, 1.0)
    ratio = math.exp(rng.uniform(-math.log(_MAX_ASPECT_JITTER), math.log(_MAX_ASPECT_JITTER)))
    # Relative to the image's own aspect, so a full crop is the whole image, squashed to a square
    # like a whole image fed to the feature extractor.
    cw = min(1.0, math.sqrt(area * ratio)) * w
    ch = min(1.0, math.sqrt(area / ratio)) * h
    x0 = rng.uniform(0.0, w - cw)
    y0 = rng.uniform(0.0, h - ch)
    out = img.resize(
        (image_size, image_size), Image.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch)
    )
    arr = np.asarray(out, dtype=np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return arr / 127.5 - 1.0


def _sample_batch(pil_images, rng, batch_size, image_size):
    idx = rng.integers(0, len(pil_images), size=batch_size)
    batch = np.stack([_augment(pil_images[i], rng, image_size) for i in idx])
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def _checkpoint_name(step):
    return f"{_CKPT_PREFIX}{step:08d}{_CKPT_SUFFIX}"


def list_checkpoints(path):
    """Return the checkpoint files under ``path``, oldest first.

    Parameters
    ----------
    path : str or path-like
        A training output folder (its ``checkpoints/`` sub-folder is searched) or a
        ``checkpoints/`` folder itself.

    Returns
    -------
    files : list of pathlib.Path
        Sorted by training step.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import list_checkpoints
    >>> list_checkpoints("runs/horse")  # doctest: +SKIP
    [PosixPath('runs/horse/checkpoints/step-00001000.pt'), ...]
    """
    path = Path(path)
    folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
    if not folder.is_dir():
        return []
    files = []
    for p in folder.glob(f"{_CKPT_PREFIX}*{_CKPT_SUFFIX}"):
        stem = p.name[len(_CKPT_PREFIX) : -len(_CKPT_SUFFIX)]
        if stem.isdigit():
            files.append((int(stem), p))
    return [p for _, p in sorted(files)]


def _atomic_write(path, write):
    """Write through a temporary file in the same folder, then rename: a kill never leaves a torn file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write_text(path, text):
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def load_checkpoint(path):
    """Load a checkpoint written by :func:`train_ddpm`.

    Parameters
    ----------
    path : str or path-like
        A checkpoint file, a ``checkpoints/`` folder or a training output folder; for a folder
        the latest readable checkpoint is used.

    Returns
    -------
    checkpoint : dict
        Keys ``step``, ``unet_kwargs``, ``model``, ``ema``, ``optimizer``, ``rng``, ``hparams``,
        ``train_seconds``, ``sessions`` and ``log``.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import load_checkpoint
    >>> load_checkpoint("runs/horse")["step"]  # doctest: +SKIP
    4000
    """
    path = Path(path)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=False)
    files = list_checkpoints(path)
    if not files:
        raise FileNotFoundError(f"No checkpoint ({_CKPT_PREFIX}*{_CKPT_SUFFIX}) found under {path}.")
    # Writes are atomic, but fall back to an older file rather than fail on a damaged disk.
    for f in reversed(files):
        try:
            ckpt = torch.load(f, map_location="cpu", weights_only=False)
            ckpt["path"] = str(f)
            return ckpt
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
            warnings.warn(f"Skipping unreadable checkpoint {f}: {exc}", RuntimeWarning)
    raise RuntimeError(f"None of the checkpoints under {path} could be read.")


def _rng_state(np_rng, gen):
    state = {
        "numpy": np_rng.bit_generator.state,
        "torch_generator": gen.get_state(),
        "torch_global": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state, np_rng, gen):
    np_rng.bit_generator.state = state["numpy"]
    gen.set_state(state["torch_generator"])
    torch.set_rng_state(state["torch_global"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def _ema_unet(ckpt, dtype=torch.float32):
    from diffusers import UNet2DModel
    from diffusers.training_utils import EMAModel

    unet = UNet2DModel(**ckpt["unet_kwargs"])
    unet.load_state_dict(ckpt["model"])
    ema = EMAModel(unet.parameters())
    ema.load_state_dict(ckpt["ema"])
    ema.copy_to(unet.parameters())
    # ModelMixin.to warns about fp32-only modules for any dtype change; this UNet has none.
    for param in unet.parameters():
        param.data = param.data.to(dtype)
    return unet.eval()


def _save_pipeline(unet, output_dir):
    from diffusers import DDPMPipeline

    DDPMPipeline(unet=unet, scheduler=make_scheduler()).save_pretrained(
        output_dir, safe_serialization=True
    )


def export_checkpoint(checkpoint, output_dir, *, dtype="float32"):
    """Write the EMA UNet of a checkpoint as a ``DDPMPipeline.save_pretrained`` folder.

    Parameters
    ----------
    checkpoint : str or path-like
        A checkpoint file, a ``checkpoints/`` folder or a training output folder (the latest
        checkpoint is used).
    output_dir : str or path-like
        Destination; gets ``model_index.json``, ``unet/`` (safetensors) and ``scheduler/``.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Storage precision of the weights. ``UNet2DModel.from_pretrained(...,
        torch_dtype=torch.float32)`` loads half-precision weights back into fp32.

    Returns
    -------
    info : dict
        ``step``, ``train_seconds``, ``hparams``, ``sessions`` and ``checkpoint`` (the file used).

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import export_checkpoint
    >>> export_checkpoint("runs/horse", "horse_ddpm", dtype="float16")  # doctest: +SKIP
    """
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {dtype!r}.")
    ckpt = load_checkpoint(checkpoint)
    unet = _ema_unet(ckpt, dtypes[dtype])
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    _save_pipeline(unet, output_dir)
    return {
        "step": int(ckpt["step"]),
        "train_seconds": float(ckpt["train_seconds"]),
        "hparams": ckpt["hparams"],
        "sessions": ckpt["sessions"],
        "checkpoint": ckpt.get("path", str(checkpoint)),
        "n_params": sum(p.numel() for p in unet.parameters()),
    }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def _autocast_dtype(mixed_precision, device):
    choices = ("auto", "no", "bf16", "fp16")
    if mixed_precision not in choices:
        raise ValueError(f"mixed_precision must be one of {choices}, got {mixed_precision!r}.")
    if device.type != "cuda":
        if mixed_precision in ("bf16", "fp16"):
            raise ValueError(
                f"mixed_precision={mixed_precision!r} is only supported on CUDA; use 'auto' or 'no' "
                f"on {device.type}."
            )
        return None
    if mixed_precision == "no":
        return None
    if mixed_precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mixed_precision == "bf16" else torch.float16


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


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

    Parameters
    ----------
    images : str, path-like or list
        A folder (every file Pillow can read, converted to RGB and EXIF-transposed), or a list
        of HxWx3 ``uint8`` arrays and/or image paths, of any sizes.
    output_dir : str or path-like
        Receives ``checkpoints/``, ``train_log.csv`` (step, loss, learning rate, seconds),
        ``train_info.json`` and, at the end, the ``DDPMPipeline.save_pretrained`` folder of the
        EMA model (``model_index.json``, ``unet/``, ``scheduler/``).
    preset : {"64", "128", "256", "tiny"}, default="64"
        UNet configuration, default resolution and default batch size.
    image_size : int, optional
        Override of the preset's square training resolution (a multiple of
        ``2 ** (number of levels - 1)``).
    max_steps : int, default=10000
        Total optimizer steps, counting those of earlier (resumed) calls.
    batch_size : int, optional
        Defaults to the preset's.
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
    mixed_precision : {"auto", "no", "bf16", "fp16"}, default="auto"
        Autocast on CUDA only ("auto": bf16 where supported, else fp16 with gradient scaling);
        CPU training is always fp32.
    random_state : int, default=0
        Seeds the initial weights, data sampling, augmentation, noise and timesteps.
    progress : bool, default=True
        Show a tqdm progress bar with the running loss.
    num_threads : int, optional
        ``torch.set_num_threads`` for the run (e.g. 1 to leave cores free).

    Returns
    -------
    output_dir : pathlib.Path
        The pipeline folder, loadable with ``diffusers.DDPMPipeline.from_pretrained`` or
        ``UNet2DModel.from_pretrained(output_dir, subfolder="unet")``.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import train_ddpm
    >>> train_ddpm("photos/", "runs/my_ddpm", preset="64", max_steps=20000)  # doctest: +SKIP
    PosixPath('runs/my_ddpm')
    """
    from diffusers import UNet2DModel
    from diffusers.training_utils import EMAModel

    spec = get_preset(preset)
    image_size = spec["image_size"] if image_size is None else _check_positive_int("image_size", image_size)
    n_levels = len(spec["unet"]["block_out_channels"])
    if image_size % 2 ** (n_levels - 1):
        raise ValueError(
            f"image_size={image_size} must be a multiple of {2 ** (n_levels - 1)} for preset {preset!r}."
        )
    batch_size = spec["batch_size"] if batch_size is None else _check_positive_int("batch_size", batch_size)
    max_steps = _check_positive_int("max_steps", max_steps)
    checkpoint_every = _check_positive_int("checkpoint_every", checkpoint_every)
    keep_checkpoints = _check_positive_int("keep_checkpoints", keep_checkpoints)
    if not (0.0 < float(ema_decay) < 1.0):
        raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay!r}.")
    if not float(lr) > 0:
        raise ValueError(f"lr must be positive, got {lr!r}.")
    if int(lr_warmup_steps) < 0:
        raise ValueError(f"lr_warmup_steps must be >= 0, got {lr_warmup_steps!r}.")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available.")
    amp_dtype = _autocast_dtype(mixed_precision, device)
    if num_threads is not None:
        torch.set_num_threads(_check_positive_int("num_threads", num_threads))

    output_dir = Path(output_dir)
    ckpt_dir = output_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    unet_kwargs = dict(spec["unet"], sample_size=image_size)
    hparams = dict(
        preset=str(preset), image_size=image_size, batch_size=batch_size, lr=float(lr),
        lr_warmup_steps=int(lr_warmup_steps), weight_decay=float(weight_decay),
        ema_decay=float(ema_decay), random_state=int(random_state),
    )

    pil_images = _load_images(images, image_size)

    existing = list_checkpoints(ckpt_dir)
    if existing and not resume:
        warnings.warn(f"resume=False: deleting {len(existing)} checkpoint(s) in {ckpt_dir}.", UserWarning)
        for f in existing:
            f.unlink()
        existing = []
    ckpt = load_checkpoint(ckpt_dir) if existing else None

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
            if changed:
                warnings.warn(f"Resuming with changed settings (old, new): {changed}", UserWarning)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            ema_state = ckpt["ema"]
            start_step = int(ckpt["step"])
            train_seconds = float(ckpt["train_seconds"])
            sessions = list(ckpt["sessions"])
            log_rows = list(ckpt["log"])
            _set_rng_state(ckpt["rng"], np_rng, gen)
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
        scheduler = make_scheduler()
        sessions.append({"start_step": start_step, "end_step": start_step, "device": str(device),
                         "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")})

        def save(step):
            state = {
                "step": step,
                "unet_kwargs": unet_kwargs,
                "hparams": hparams,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "ema": _to_cpu(ema.state_dict()),
                "optimizer": _to_cpu(optimizer.state_dict()),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "rng": _rng_state(np_rng, gen),
                "train_seconds": train_seconds,
                "sessions": sessions,
                "log": log_rows,
            }
            path = ckpt_dir / _checkpoint_name(step)
            _atomic_write(path, lambda fh: torch.save(state, fh))
            for old in list_checkpoints(ckpt_dir)[:-keep_checkpoints]:
                old.unlink(missing_ok=True)
            _write_log(output_dir, log_rows)
            _write_info(output_dir, state, n_images=len(pil_images))

        bar = tqdm(
            total=max_steps, initial=start_step, disable=not progress, desc="train-ddpm",
            unit="step", mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True,
        )
        running, loss_sum, n_sum = None, None, 0
        t_last = time.perf_counter()
        deadline = None if max_minutes is None else time.monotonic() + 60.0 * float(max_minutes)
        for step in range(start_step, max_steps):
            if lr_warmup_steps:
                for group in optimizer.param_groups:
                    group["lr"] = lr * min(1.0, (step + 1) / lr_warmup_steps)
            x0 = _sample_batch(pil_images, np_rng, batch_size, image_size).to(device)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=gen).to(device)
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
            ema.step(model.parameters())

            # Reading the loss synchronises a GPU, so it is summed on the device and read every
            # 10 steps (and before each checkpoint, so a diverged run is never saved).
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            n_sum += 1
            done = step + 1
            bar.update(1)
            now = time.perf_counter()
            train_seconds += now - t_last
            t_last = now
            if done % 10 == 0 or done == max_steps or done % checkpoint_every == 0:
                mean = loss_sum.item() / n_sum
                if not math.isfinite(mean):
                    raise RuntimeError(
                        f"Training diverged before step {done} (loss={mean}); lower lr or resume "
                        f"from an earlier checkpoint."
                    )
                log_rows.append((done, mean, optimizer.param_groups[0]["lr"], round(train_seconds, 2)))
                running = mean if running is None else 0.8 * running + 0.2 * mean
                bar.set_postfix(loss=f"{running:.4f}", refresh=False)
                loss_sum, n_sum = None, 0
            out_of_time = deadline is not None and time.monotonic() > deadline
            if done % checkpoint_every == 0 or done == max_steps or out_of_time:
                if out_of_time and loss_sum is not None and not math.isfinite(loss_sum.item()):
                    raise RuntimeError(f"Training diverged before step {done}; lower lr or resume earlier.")
                sessions[-1]["end_step"] = done
                save(done)
                t_last = time.perf_counter()  # checkpoint I/O is not training time
            if out_of_time:
                break
        bar.close()

        if start_step >= max_steps:
            sessions.pop()
        unet = _ema_unet(load_checkpoint(ckpt_dir))
    _save_pipeline(unet, output_dir)
    return output_dir


def _optimizer_to(optimizer, device):
    for state in optimizer.state.values():
        for k, v in state.items():
            if torch.is_tensor(v):
                state[k] = v.to(device)


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _write_log(output_dir, rows):
    text = "step,loss,lr,train_seconds\n" + "".join(f"{s},{l:.6f},{lr:.3g},{t}\n" for s, l, lr, t in rows)
    _atomic_write_text(Path(output_dir) / "train_log.csv", text)


def _write_info(output_dir, state, n_images):
    info = {
        "step": state["step"],
        "train_seconds": round(state["train_seconds"], 1),
        "n_images": n_images,
        "hparams": state["hparams"],
        "unet_kwargs": state["unet_kwargs"],
        "scheduler": SCHEDULER_KWARGS,
        "sessions": state["sessions"],
        "torch": torch.__version__,
    }
    _atomic_write_text(Path(output_dir) / "train_info.json", json.dumps(info, indent=1) + "\n")
