"""Atomic file writes: write a temporary file next to the target, then ``os.replace`` it.

``os.replace`` is atomic on POSIX and Windows when source and target are on the same file
system, which is why the temporary file lives in the target's own folder. A reader (or a
``--resume`` run after a crash) therefore sees either the old file or the complete new one, never
a truncated one.
"""

import contextlib
import os
import tempfile
from pathlib import Path


def ensure_directory(path, argument="output folder"):
    """Create ``path`` (and its parents) or raise an error that names it.

    Parameters
    ----------
    path : str or path-like
        The folder to create.
    argument : str, default="output folder"
        How the folder is called in the error message (e.g. ``"-o/--output"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NotADirectoryError
        If ``path`` or one of its parents is a file.
    PermissionError
        If the folder cannot be created or written to.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_ddpm.utils._atomic import ensure_directory
    >>> ensure_directory(tempfile.mkdtemp() + "/predictions").is_dir()
    True
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as exc:
        raise NotADirectoryError(
            f"{argument} {str(path)!r} cannot be created: it or one of its parents is a file, not a folder."
        ) from exc
    except OSError as exc:
        raise PermissionError(f"{argument} {str(path)!r} cannot be created: {exc.strerror or exc}.") from exc
    _check_can_create_files(path, argument)
    return path


def _check_can_create_files(folder, argument):
    # A file really created and removed: os.access says yes to root on a read-only mount, and
    # atomic writes need exactly this (a temporary file next to the target).
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as exc:
        raise PermissionError(f"{argument} {str(folder)!r} is not writable: {exc.strerror or exc}.") from exc


def check_output_file(path, argument="output file"):
    """Check, before any slow work, that :func:`atomic_write` will be able to write ``path``.

    The folder is created if needed (as :func:`ensure_directory` does) and must take a new file;
    ``path`` itself must not be a folder. Run it first in a command, so that a bad output path
    fails at once, naming the argument, instead of after the work, naming a temporary file.

    Parameters
    ----------
    path : str or path-like
        The file a command will write (it may exist: it is replaced).
    argument : str, default="output file"
        How the file is called in error messages (e.g. ``"-o/--output"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    IsADirectoryError
        If ``path`` is a folder.
    NotADirectoryError, PermissionError
        If its folder cannot be created or written to.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_ddpm.utils._atomic import check_output_file
    >>> check_output_file(tempfile.mkdtemp() + "/models/seg.joblib").name
    'seg.joblib'
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{argument} {str(path)!r} is a folder; give a file name, e.g. "
                                f"{str(path / 'model.joblib')!r}.")
    ensure_directory(path.parent, f"{argument} folder")
    return path


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file that replaces ``path`` only when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or path-like
        Final location. Its folder must exist.
    mode : {"wb", "w"}, default="wb"
        Binary or text mode.

    Yields
    ------
    file object
        Write to it; on an exception the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_ddpm.utils._atomic import atomic_write
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_write(target, "w") as f:
    ...     _ = f.write("done")
    >>> target.read_text()
    'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    # The dot prefix and .tmp suffix keep half-written files out of folder listings and globs.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # name the target, not the temporary file
            raise type(exc)(exc.errno, f"cannot write {str(path)!r}: {exc.strerror}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_image(image, path, **save_kwargs):
    """Save a PIL image atomically; the format comes from ``path``'s extension.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sklearn_ddpm.utils._atomic import atomic_save_image
    >>> target = Path(tempfile.mkdtemp()) / "mask.png"
    >>> atomic_save_image(Image.new("L", (4, 3)), target)
    >>> Image.open(target).size
    (4, 3)
    """
    from PIL import Image

    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: no image format is registered for the extension {path.suffix!r}.")
    with atomic_write(path, "wb") as f:
        image.save(f, format=image_format, **save_kwargs)


def atomic_save_npy(array, path):
    """Save a NumPy array as ``.npy`` atomically.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from sklearn_ddpm.utils._atomic import atomic_save_npy
    >>> target = Path(tempfile.mkdtemp()) / "map.npy"
    >>> atomic_save_npy(np.zeros((2, 2)), target)
    >>> np.load(target).shape
    (2, 2)
    """
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def atomic_joblib_dump(obj, path, compress=3):
    """``joblib.dump`` to ``path`` atomically, so an interrupted save never leaves a broken file.

    Examples
    --------
    >>> import tempfile, joblib
    >>> from pathlib import Path
    >>> from sklearn_ddpm.utils._atomic import atomic_joblib_dump
    >>> target = Path(tempfile.mkdtemp()) / "model.joblib"
    >>> atomic_joblib_dump({"a": 1}, target)
    >>> joblib.load(target)
    {'a': 1}
    """
    import joblib

    with atomic_write(path, "wb") as f:
        joblib.dump(obj, f, compress=compress)
