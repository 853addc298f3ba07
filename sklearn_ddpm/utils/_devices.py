"""Device selection with a clear message when CUDA is asked for but absent."""

import platform
import warnings
from pathlib import Path

import torch


def resolve_device(device, fitting=True):
    """Return a ``torch.device`` for ``device``.

    Asking for CUDA on a machine without it is an error while fitting. A model that was fitted on a
    GPU and loaded on a CPU-only machine falls back to the CPU for prediction, with a warning
    (``fitting=False``), so saved pipelines stay usable anywhere.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        if fitting:
            raise RuntimeError(
                f"device={str(device)!r} was requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use device='cpu'."
            )
        warnings.warn(f"CUDA is not available; running on the CPU instead of {str(device)!r}.", UserWarning)
        return torch.device("cpu")
    return device


def cpu_has_fast_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so bf16 autocast is faster than fp32.

    Without these instructions PyTorch emulates bf16 on the CPU, which is slower than fp32.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_autocast_dtype(autocast_dtype, device):
    """The ``torch.dtype`` of an ``autocast_dtype`` parameter on ``device`` (None: float32, no autocast).

    "auto" is bfloat16 where the hardware computes it natively (CUDA GPUs that support it, CPUs
    with :func:`cpu_has_fast_bf16`), else None.
    """
    device = torch.device(device)
    if autocast_dtype is None:
        return None
    if autocast_dtype == "auto":
        fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_has_fast_bf16()
        return torch.bfloat16 if fast else None
    return getattr(torch, autocast_dtype)


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo on Linux), for run records and model cards."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
