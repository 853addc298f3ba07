"""Checkpoints of :func:`train_ddpm`: naming, atomic writing, loading, and the random states they hold."""

import warnings
from pathlib import Path

import torch

from ..utils._atomic import atomic_write

CHECKPOINT_DIR = "checkpoints"
_CKPT_PREFIX = "step-"
_CKPT_SUFFIX = ".pt"


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


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that ``torch.load(weights_only=True)`` refuses: it would call code when unpickled."""


def load_checkpoint(path):
    """Load a checkpoint written by :func:`train_ddpm`, running no code from the file.

    Checkpoints hold only tensors, numbers, strings and plain containers (the networks' and the
    optimizer's state dicts, the random generators' states, the logs), so they are read with
    ``torch.load(weights_only=True)``: a file whose pickle would call anything else (a tampered
    checkpoint) is refused with :class:`UnsafeCheckpointError`, and nothing of it runs.

    Parameters
    ----------
    path : str or path-like
        A checkpoint file, a ``checkpoints/`` folder or a training output folder; for a folder
        the latest readable checkpoint is used (a damaged one is skipped with a warning; a refused
        one stops the search: it is not damage but tampering).

    Returns
    -------
    checkpoint : dict
        Keys ``step``, ``unet_kwargs``, ``model``, ``ema``, ``optimizer``, ``rng``, ``hparams``,
        ``train_seconds``, ``sessions`` and ``log``; ``rank_rng`` holds the generator states of
        each process of a data-parallel run (None for one process; absent in older checkpoints).

    Raises
    ------
    UnsafeCheckpointError
        The file's pickle refers to functions or classes beyond tensors and plain data.

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import load_checkpoint
    >>> load_checkpoint("runs/horse")["step"]  # doctest: +SKIP
    4000
    """
    path = Path(path)
    if path.is_file():
        return _load(path)
    files = list_checkpoints(path)
    if not files:
        raise FileNotFoundError(f"No checkpoint ({_CKPT_PREFIX}*{_CKPT_SUFFIX}) found under {path}.")
    # Writes are atomic, but fall back to an older file rather than fail on a damaged disk.
    for f in reversed(files):
        try:
            ckpt = _load(f)
            ckpt["path"] = str(f)
            return ckpt
        except UnsafeCheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
            warnings.warn(f"Skipping unreadable checkpoint {f}: {exc}", RuntimeWarning)
    raise RuntimeError(f"None of the checkpoints under {path} could be read.")


def _load(path):
    import pickle

    try:
        # Everything train_ddpm saves is allowed by weights_only=True as it is (the numpy generator
        # state is a dict of ints, the optimizer's betas a tuple): no extra safe globals are needed.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        reason = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise UnsafeCheckpointError(
            f"{path} was refused: it is not a plain checkpoint of tensors and data ({reason.strip()}). "
            "A checkpoint written by train_ddpm never needs more; this file may have been tampered with, "
            "so nothing of it was run.") from None


def save_checkpoint(state, ckpt_dir, keep):
    """Write ``state`` (a dict with a ``step``) to ``ckpt_dir`` and delete all but the ``keep`` newest.

    The write is atomic: a run killed while saving leaves the previous checkpoint intact.
    """
    ckpt_dir = Path(ckpt_dir)
    with atomic_write(ckpt_dir / f"{_CKPT_PREFIX}{state['step']:08d}{_CKPT_SUFFIX}", "wb") as fh:
        torch.save(_to_cpu(state), fh)
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)


def rng_state(np_rng, gen):
    """The states of every random generator a training step draws from."""
    state = {
        "numpy": np_rng.bit_generator.state,
        "torch_generator": gen.get_state(),
        "torch_global": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state, np_rng, gen):
    """Restore the states saved by :func:`rng_state`."""
    np_rng.bit_generator.state = state["numpy"]
    gen.set_state(state["torch_generator"])
    torch.set_rng_state(state["torch_global"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
