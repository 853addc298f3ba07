"""A size-bounded store of UNet activations, in memory and optionally on disk.

A grid search over blocks, steps or ensemble sizes refits the feature transformer for every
candidate and fold; keyed by (model fingerprint, image content, timestep, block, noise), the
activations it already computed are reused instead of running the UNet again.
"""

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from safetensors.torch import load_file, save

from ..utils._atomic import atomic_write

class ActivationCache:
    """LRU cache of activation tensors.

    Parameters
    ----------
    max_bytes : int, default=2**30 (1 GiB)
        Bound on the in-memory part; least recently used entries are evicted beyond it.
    directory : str or path-like, default=None
        Also keep entries on disk (safetensors files) so other processes and later sessions reuse
        them.
    max_disk_bytes : int, default=20 GiB
        Bound on the disk part; oldest files are deleted beyond it.

    Examples
    --------
    >>> import torch
    >>> from sklearn_ddpm.features import ActivationCache
    >>> cache = ActivationCache(max_bytes=10_000)
    >>> cache.put(("key",), torch.ones(3))
    >>> cache.get(("key",))
    tensor([1., 1., 1.])
    """

    def __init__(self, max_bytes=2**30, directory=None, max_disk_bytes=20 * 2**30):
        self.max_bytes = int(max_bytes)
        self.directory = Path(directory) if directory is not None else None
        self.max_disk_bytes = int(max_disk_bytes)
        self._entries = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __repr__(self):
        return (
            f"ActivationCache(entries={len(self._entries)}, bytes={self._bytes}, hits={self.hits}, "
            f"misses={self.misses}, directory={self.directory})"
        )

    def __deepcopy__(self, memo):
        # clone() deep-copies parameters: grid-search candidates must share one cache.
        return self

    def __reduce__(self):
        # Pickled estimators refer to a fresh cache with the same settings, not to the entries.
        return (ActivationCache, (self.max_bytes, self.directory, self.max_disk_bytes))

    def get(self, key):
        """The tensor stored under ``key``, or None."""
        with self._lock:
            tensor = self._entries.get(key)
            if tensor is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return tensor
        if self.directory is not None:
            path = self._path(key)
            if path.is_file():
                try:
                    tensor = load_file(path)["activation"]
                except Exception:  # a file cut short by a crash is a miss, not an error
                    tensor = None
                if tensor is not None:
                    os.utime(path)
                    self._remember(key, tensor)
                    with self._lock:
                        self.hits += 1
                    return tensor
        with self._lock:
            self.misses += 1
        return None

    def put(self, key, tensor):
        """Store ``tensor`` (on the CPU) under ``key``."""
        tensor = tensor.detach().to("cpu").contiguous()
        self._remember(key, tensor)
        if self.directory is not None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Processes sharing the folder (grid-search workers) never read a half-written file.
            with atomic_write(path) as f:
                f.write(save({"activation": tensor}))
            self._trim_disk()

    def clear(self):
        """Forget the in-memory entries (disk files stay)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self):
        return self._bytes

    def _remember(self, key, tensor):
        size = tensor.numel() * tensor.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.numel() * old.element_size()
            self._entries[key] = tensor
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.numel() * evicted.element_size()

    def _path(self, key):
        digest = hashlib.sha1(repr(key).encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.safetensors"

    def _trim_disk(self):
        files = sorted(self.directory.glob("*/*.safetensors"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.max_disk_bytes:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)


def resolve_cache(memory):
    """Turn a transformer's ``memory`` parameter into an :class:`ActivationCache` or None.

    As scikit-learn's ``memory`` parameters: None, a directory, or a ``joblib.Memory`` (its
    location; one without a location caches nothing); and an :class:`ActivationCache` object,
    which keeps activations in memory.
    """
    if memory is None or isinstance(memory, ActivationCache):
        return memory
    if isinstance(memory, (str, os.PathLike)):
        return ActivationCache(directory=memory)
    location = getattr(memory, "location", None)
    if hasattr(memory, "cache"):  # joblib.Memory
        return ActivationCache(directory=location) if location is not None else None
    raise TypeError(f"memory must be None, a directory, a joblib.Memory or an ActivationCache, got {memory!r}.")
