"""Export of a :func:`train_ddpm` checkpoint: its EMA weights as a ``DDPMPipeline`` folder."""

import os
from pathlib import Path

import torch
from diffusers import UNet2DModel
from diffusers.training_utils import EMAModel
from sklearn.utils._param_validation import StrOptions, validate_params

from ..backbone import Backbone
from ..backbone._schedule import noise_scheduler
from ._checkpoints import load_checkpoint

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@validate_params(
    {
        "checkpoint": [str, os.PathLike],
        "output_dir": [str, os.PathLike],
        "dtype": [StrOptions(set(_DTYPES))],
    },
    prefer_skip_nested_validation=True,
)
def export_checkpoint(checkpoint, output_dir, *, dtype="float32"):
    """Write the EMA UNet of a checkpoint as a ``DDPMPipeline.save_pretrained`` folder.

    Parameters
    ----------
    checkpoint : str or path-like
        A checkpoint file, a ``checkpoints/`` folder or a training output folder (the latest
        checkpoint is used).
    output_dir : str or path-like
        Destination; gets ``model_index.json``, ``unet/`` (safetensors) and ``scheduler/`` (the
        noise schedule of training).
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Storage precision of the weights. ``UNet2DModel.from_pretrained(...,
        torch_dtype=torch.float32)`` loads half-precision weights back into fp32.

    Returns
    -------
    info : dict
        ``step``, ``train_seconds``, ``hparams``, ``sessions``, ``cpu_seconds`` (process CPU time of
        all sessions; None if a session did not record it), ``checkpoint`` (the file used) and
        ``n_params``.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import export_checkpoint
    >>> export_checkpoint("runs/horse", "horse_ddpm", dtype="float16")  # doctest: +SKIP
    """
    return _export(load_checkpoint(checkpoint), output_dir, dtype, source=checkpoint)


def export_run(run_dir):
    """Export the latest checkpoint of a :func:`train_ddpm` run into the run's folder, with its record and card.

    Writes the EMA model (as :func:`export_checkpoint`, fp32), then ``train_info.json`` (the
    training record of that same checkpoint: one step for the weights and the record) and
    ``README.md`` (a model card made from the record, as the bundled backbone's).

    Parameters
    ----------
    run_dir : str or path-like
        The ``output_dir`` of :func:`train_ddpm`.

    Returns
    -------
    record : dict
        What ``train_info.json`` holds: ``step``, ``train_seconds``, ``cpu_seconds``, ``n_images``,
        ``hparams``, ``unet_kwargs``, ``scheduler``, ``sessions``, ``torch``, ``n_params`` and
        ``checkpoint`` (its file name).

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import export_run
    >>> export_run("runs/my_ddpm")["step"]  # doctest: +SKIP
    2500
    """
    import json

    from ..utils._atomic import atomic_write
    from ._card import model_card

    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir)
    info = _export(ckpt, run_dir, "float32", source=run_dir)
    n_images = ckpt.get("n_images")
    if n_images is None and (run_dir / "train_info.json").is_file():  # checkpoints older than the field
        n_images = json.loads((run_dir / "train_info.json").read_text()).get("n_images")
    record = {
        "step": info["step"],
        "train_seconds": round(info["train_seconds"], 1),
        # Sessions recorded before this field existed count as unknown, so the total is a lower bound then.
        "cpu_seconds": round(sum(s.get("cpu_seconds", 0.0) for s in info["sessions"]), 1),
        "n_images": n_images,
        "hparams": info["hparams"],
        "unet_kwargs": ckpt["unet_kwargs"],
        # The schedule's own record, so the file states what was trained with, not a copy of it.
        "scheduler": {k: v for k, v in noise_scheduler().config.items() if not k.startswith("_")},
        "sessions": info["sessions"],
        "torch": torch.__version__,
        "n_params": info["n_params"],
        "checkpoint": Path(info["checkpoint"]).name,
    }
    n_bytes = sum(p.stat().st_size for p in (run_dir / "unet").glob("*.safetensors"))
    with atomic_write(run_dir / "train_info.json", "w") as fh:
        fh.write(json.dumps(record, indent=1) + "\n")
    with atomic_write(run_dir / "README.md", "w") as fh:
        fh.write(model_card(record, n_bytes=n_bytes, dtype="fp32"))
    return record


def _export(ckpt, output_dir, dtype, source):
    unet = _ema_unet(ckpt, _DTYPES[dtype])
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    Backbone(unet, noise_scheduler()).save_pretrained(output_dir)
    return {
        "step": int(ckpt["step"]),
        "train_seconds": float(ckpt["train_seconds"]),
        "hparams": ckpt["hparams"],
        "sessions": ckpt["sessions"],
        # None when a session predates the cpu_seconds field: no partial figure passed off as the total.
        "cpu_seconds": (None if any("cpu_seconds" not in s for s in ckpt["sessions"])
                        else sum(s["cpu_seconds"] for s in ckpt["sessions"])),
        "checkpoint": ckpt.get("path", str(source)),
        "n_params": sum(p.numel() for p in unet.parameters()),
    }


def _ema_unet(ckpt, dtype):
    # Building a UNet draws its initial weights from torch's global RNG; keep the caller's.
    with torch.random.fork_rng(devices=[]):
        unet = UNet2DModel(**ckpt["unet_kwargs"])
    unet.load_state_dict(ckpt["model"])
    ema = EMAModel(unet.parameters())
    ema.load_state_dict(ckpt["ema"])
    ema.copy_to(unet.parameters())
    # ModelMixin.to warns about fp32-only modules for any dtype change; this UNet has none.
    for param in unet.parameters():
        param.data = param.data.to(dtype)
    return unet.eval()
