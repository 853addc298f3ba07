"""Device selection with a clear message when CUDA is asked for but absent."""

import warnings

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
