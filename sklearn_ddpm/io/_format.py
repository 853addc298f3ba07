"""The safe model file: a zip of a JSON tree, safetensors and blobs, recognised by its first bytes.

Layout (a zip archive, members stored uncompressed except the JSON)::

    mimetype              "application/vnd.sklearn-ddpm.model" (the first member: the magic header)
    model.json            {"format": ..., "format_version": 1, "written_by": {...}, "root": <tree>}
    tensors.safetensors   torch tensors (MLP weights, optimizer state, text embeddings)
    arrays.safetensors    numpy arrays (classes_, standardization statistics)
    blobs/N               byte strings (a backbone's safetensors weights, tokenizer files)

As in OpenDocument and EPUB files, the uncompressed ``mimetype`` member comes first, so the media
type sits at byte 38 of every file: :func:`model_file_format` recognises a file from its first
bytes, whatever its name. Reading it parses JSON and safetensors only (:mod:`._codec`,
:mod:`._trust`); a pickle or joblib file is refused before a byte of it is unpickled unless the
caller trusts it.
"""

import io
import json
import zipfile
from pathlib import Path

from ._codec import Decoder, Encoder, ModelFormatError

MEDIA_TYPE = b"application/vnd.sklearn-ddpm.model"
#: The extension ``sklearn-ddpm fit`` suggests; any name works, the format is read from the content.
MODEL_SUFFIX = ".skddpm"
FORMAT_NAME = "sklearn-ddpm model"
#: Bumped when a file of this version could not be read correctly by an older reader.
FORMAT_VERSION = 1
_MAX_JSON_BYTES = 256 * 2**20
_HEADER_BYTES = 38 + len(MEDIA_TYPE)

# First bytes of the files joblib and pickle write: pickle protocol 2-5 opcodes, and the
# compressors joblib uses (zlib, gzip, bz2, xz, lzma, lz4).
_PICKLE_MAGIC = {
    b"\x80\x02": "pickle", b"\x80\x03": "pickle", b"\x80\x04": "pickle", b"\x80\x05": "pickle",
    b"\x78\x01": "compressed joblib", b"\x78\x5e": "compressed joblib", b"\x78\x9c": "compressed joblib",
    b"\x78\xda": "compressed joblib", b"\x1f\x8b": "compressed joblib", b"BZh": "compressed joblib",
    b"\xfd7zXZ\x00": "compressed joblib", b"\x5d\x00\x00": "compressed joblib", b"\x04\x22\x4d\x18": "compressed joblib",
}


class UnsafeModelFileError(ModelFormatError):
    """A model file that is not in the safe format (e.g. a pickle) and was not trusted: nothing of it ran."""


def model_file_format(path_or_bytes):
    """What a model file is, judged from its first bytes only (nothing is unpickled).

    Parameters
    ----------
    path_or_bytes : str, path-like or bytes

    Returns
    -------
    {"safe", "pickle", "compressed joblib", "unknown"}

    Examples
    --------
    >>> from sklearn_ddpm.io import model_file_format
    >>> model_file_format(b"\\x80\\x04\\x95...")
    'pickle'
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        head = bytes(path_or_bytes[:_HEADER_BYTES])
    else:
        with open(path_or_bytes, "rb") as f:
            head = f.read(_HEADER_BYTES)
    if _is_safe_header(head):
        return "safe"
    for magic, kind in _PICKLE_MAGIC.items():
        if head.startswith(magic):
            return kind
    return "unknown"


def _is_safe_header(head):
    # zip local file header: signature, ..., name length at 26, extra length at 28, name at 30
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return False
    name_length = int.from_bytes(head[26:28], "little")
    extra_length = int.from_bytes(head[28:30], "little")
    start = 30 + name_length + extra_length
    return head[30:30 + name_length] == b"mimetype" and head[start:start + len(MEDIA_TYPE)] == MEDIA_TYPE


def dumps_model(obj):
    """The bytes of ``obj`` in the safe format (see :func:`save_model`)."""
    from safetensors.numpy import save as save_arrays
    from safetensors.torch import save as save_tensors

    from ..utils._persistence import current_versions

    encoder = Encoder()
    root = encoder.encode(obj)
    document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "written_by": current_versions(),
                "root": root}
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MEDIA_TYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("model.json", text, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("tensors.safetensors", save_tensors(encoder.tensors))
        archive.writestr("arrays.safetensors", save_arrays(encoder.arrays))
        for key, blob in encoder.blobs.items():
            archive.writestr(key, blob)
    return buffer.getvalue()


def save_model(obj, path):
    """Save a fitted estimator so that loading it runs no code from the file.

    The format (:mod:`sklearn_ddpm.io`) stores weights as safetensors and everything else
    (parameters, fitted attributes, class names, package versions) as JSON, in one zip file.
    The file is written to a temporary name and renamed, so a failure never leaves a truncated
    file. ``joblib.dump`` remains available for those who want a pickle.

    Parameters
    ----------
    obj : estimator
        A :class:`~sklearn.pipeline.Pipeline` of this package's estimators, or one of them
        (:class:`~sklearn_ddpm.MLPEnsembleClassifier`,
        :class:`~sklearn_ddpm.synthetic.SegmentationNetworkClassifier`, ...), fitted or not.
    path : str or path-like
        The file; :data:`MODEL_SUFFIX` (``.skddpm``) is the suggested extension.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        ``obj`` holds a value of a class the format does not store (e.g. an
        :class:`~sklearn_ddpm.ActivationCache` as ``memory``); the message names where. Nothing
        is written.

    Examples
    --------
    >>> from sklearn_ddpm.io import load_model, save_model
    >>> save_model(pipeline, "seg.skddpm")  # doctest: +SKIP
    >>> pipeline = load_model("seg.skddpm")  # doctest: +SKIP
    """
    from ..utils._atomic import atomic_write

    data = dumps_model(obj)  # encode first: an unsupported value fails before the file is touched
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def loads_model(data, name="<bytes>"):
    """Rebuild the object of a safe model file's bytes (see :func:`load_model`)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_arrays
    from safetensors.torch import load as load_tensors

    if not _is_safe_header(bytes(data[:_HEADER_BYTES])):
        raise ModelFormatError(f"{name} is not a sklearn-ddpm model file (its first bytes are not the format's header).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("model.json")
        if info.file_size > _MAX_JSON_BYTES:
            raise ModelFormatError(f"{name}: model.json declares {info.file_size:,} bytes, more than a model needs.")
        document = json.loads(archive.read("model.json"))
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, EOFError, OSError) as exc:
        raise ModelFormatError(f"{name} is a damaged sklearn-ddpm model file ({type(exc).__name__}: {exc}); "
                               "was it copied completely?") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{name}: model.json does not describe a {FORMAT_NAME}.")
    writer = _writer(document.get("written_by"))
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        from .. import __version__

        raise ModelFormatError(
            f"{name} is in model format version {version!r}, written by {writer}; this sklearn-ddpm ({__version__}) "
            f"reads versions up to {FORMAT_VERSION}. Upgrade sklearn-ddpm to load it.")
    try:
        names = set(archive.namelist())
        tensors = load_tensors(archive.read("tensors.safetensors"))
        arrays = load_arrays(archive.read("arrays.safetensors"))
        blobs = {key: archive.read(key) for key in names if key.startswith("blobs/")}
    except (zipfile.BadZipFile, KeyError, SafetensorError, ValueError, OSError, EOFError) as exc:
        raise ModelFormatError(f"{name} is a damaged sklearn-ddpm model file ({type(exc).__name__}: {exc}).") from None
    import torch

    decoder = Decoder(tensors, arrays, blobs, writer)
    try:
        # Networks are built (random init) before their weights are loaded: keep the caller's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            return decoder.decode(document.get("root"))
    except RecursionError:
        raise ModelFormatError(f"{name}: the model's tree is nested too deeply to be a model.") from None
    except ModelFormatError as exc:
        raise ModelFormatError(f"{name}: {exc}") from None


def _writer(versions):
    if isinstance(versions, dict) and isinstance(versions.get("sklearn-ddpm"), str):
        return f"sklearn-ddpm {versions['sklearn-ddpm']}"
    return "an unknown writer"


def load_model(path, *, trust_pickle=False):
    """Load a model file; a safe file runs no code from the file, a pickle needs ``trust_pickle=True``.

    The format is recognised from the file's first bytes, not its name (:func:`model_file_format`).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model` (``sklearn-ddpm fit``), or a joblib/pickle file.
    trust_pickle : bool, default=False
        Load a joblib or pickle file. **Unpickling runs whatever code the file holds**: only pass
        True for files you trust (that you wrote yourself). Without it such a file is refused
        before any of it is unpickled.

    Returns
    -------
    object
        The saved estimator. One :class:`~sklearn_ddpm.utils._persistence.VersionMismatchWarning`
        naming the file is emitted when it was saved with other package versions.

    Raises
    ------
    FileNotFoundError
    UnsafeModelFileError
        A pickle/joblib (or unrecognised) file without ``trust_pickle=True``.
    ModelFormatError
        A damaged or crafted safe file, or one from a newer version of the format.

    Examples
    --------
    >>> from sklearn_ddpm.io import load_model
    >>> model = load_model("seg.skddpm")  # doctest: +SKIP
    >>> old = load_model("seg.joblib", trust_pickle=True)  # a file you wrote  # doctest: +SKIP
    """
    from ..utils._persistence import collect_version_changes, warn_version_changes

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    kind = model_file_format(path)
    with collect_version_changes() as changes:
        if kind == "safe":
            model = loads_model(path.read_bytes(), str(path))
        elif not trust_pickle:
            what = (f"a {kind} file" if kind != "unknown" else
                    "not a sklearn-ddpm model file (nor a recognisable pickle)")
            raise UnsafeModelFileError(
                f"{path} is {what}. Loading a pickle runs any code it holds, so it was not opened. If you "
                "wrote it yourself or otherwise trust it, load it with trust_pickle=True (command line: "
                f"--trust-pickle), and re-save it in the safe format (sklearn_ddpm.io.save_model, suffix {MODEL_SUFFIX}).")
        else:
            model = _load_pickle(path)
    if changes:
        warn_version_changes(changes, str(path))
    return model


def _load_pickle(path):
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise ModelFormatError(f"{path} is not a readable model file ({type(exc).__name__}: {exc}); "
                               "was it written by `sklearn-ddpm fit` and copied completely?") from exc
