"""Images stored as arrays: TIFF files and stacks (tifffile), zarr arrays and OME-Zarr images.

Each reader returns the images a file holds as ``(height, width, 3)`` uint8 RGB, mapped by the
rules of ``channels`` and ``intensity`` (:func:`sklearn_ddpm.utils._pixels.to_rgb_uint8`): a
16-bit microscopy stack is read with ``intensity="percentile"`` and, for one channel or many,
``channels="mean"`` or the indices of the channels to show as R, G and B.

Axes: a TIFF's axes are tifffile's (``series[0].axes``): ``Y`` and ``X`` are the image, ``C`` or
``S`` its channels, every other axis (``Z``, ``T``, ``I``) counts images; a TIFF whose axes tifffile
cannot tell (``Q``: written without axes metadata) is read by its shape, as a plain zarr array. An OME-Zarr image
names its axes in its metadata (the first, full-resolution dataset is read). A plain zarr array
has none: 2-D is one image, 3-D is ``(Y, X, C)`` when its last axis has at most 4 entries and
``(Z, Y, X)`` otherwise, 4-D is ``(Z, Y, X, C)``.
"""

from pathlib import Path

import numpy as np

from ..utils._pixels import to_rgb_uint8

#: file name endings read by :func:`read_array_images`
ARRAY_EXTENSIONS = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".zarr", ".ome.zarr")


def is_array_file(path):
    """Whether ``path`` is a TIFF file or a zarr store, which :func:`read_array_images` reads."""
    name = str(path).lower().rstrip("/")
    return name.endswith(ARRAY_EXTENSIONS)


def read_array_images(path, channels=None, intensity="8bit"):
    """The images of a TIFF file or stack, or of a zarr / OME-Zarr store, as uint8 RGB arrays.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff`` file or a ``.zarr`` folder.
    channels : None, "mean" or tuple of int, default=None
        Which channels become R, G and B (None: the images are RGB; see
        ``DDPMFeatureTransformer(channels=...)``).
    intensity : {"8bit", "percentile"}, default="8bit"
        How values become 0-255 ("percentile" for 16-bit and float data).

    Returns
    -------
    list of ndarray of shape (height, width, 3), uint8
        One per plane of the stack (``Z``, ``T``, ... axes), in file order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file, for axes or formats it cannot map to images, and for channel counts or
        value ranges ``channels`` and ``intensity`` do not cover.
    ImportError
        If tifffile or zarr is missing (``pip install sklearn-ddpm[formats]``).

    Examples
    --------
    >>> import numpy as np, tifffile
    >>> from sklearn_ddpm.datasets import read_array_images
    >>> tifffile.imwrite("stack.tif", np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8))  # doctest: +SKIP
    >>> [im.shape for im in read_array_images("stack.tif", channels="mean", intensity="percentile")]  # doctest: +SKIP
    [(8, 8, 3), (8, 8, 3)]
    """
    planes = read_array_planes(path)
    return [to_rgb_uint8(plane, channels, intensity, plane_name(path, k, len(planes)))
            for k, plane in enumerate(planes)]


def plane_name(path, index, count):
    """How errors name plane ``index`` of ``count`` in ``path``: ``path`` alone, or ``path[index]``."""
    return f"{path}[{index}]" if count > 1 else str(path)


def read_array_planes(path):
    """The planes of a TIFF file or zarr store as stored: ``(Y, X)`` or ``(Y, X, C)`` arrays.

    Values and dtype are the file's (16-bit, float, any channel count); map them with
    :func:`~sklearn_ddpm.utils._pixels.to_rgb_uint8`. The axes rules are the module's.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of ndarray
        One per plane, in file order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file: not a TIFF file or zarr store, axes it cannot map to images (e.g. a 5-D
        array without axis names), or no pixels (an axis of length 0).
    """
    array, axes = _open_array(path)
    return _planes(array, axes, Path(path))


def count_array_planes(path):
    """How many planes :func:`read_array_planes` returns, from the file's metadata (no pixels read)."""
    array, axes = _open_array(path, shape_only=True)
    path = Path(path)
    axes = _axes(tuple(array.shape), axes, path)
    if 0 in tuple(array.shape):
        raise ValueError(f"{path}: the array of shape {tuple(array.shape)} (axes {axes}) holds no pixels.")
    return int(np.prod([n for n, a in zip(array.shape, axes) if a not in "YXC"], dtype=np.int64))


def _open_array(path, shape_only=False):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file not found: {path}")
    name = str(path).lower().rstrip("/")
    if name.endswith((".tif", ".tiff")):
        return _read_tiff(path, shape_only)
    if name.endswith(".zarr"):
        return _read_zarr(path)
    raise ValueError(f"{path}: not a TIFF file or zarr store (expected one of {', '.join(ARRAY_EXTENSIONS)}).")


class _Shape:
    """The shape of a TIFF series, without its pixels."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _read_tiff(path, shape_only=False):
    try:
        import tifffile
    except ImportError as error:  # pragma: no cover - the formats extra
        raise ImportError(f"{path}: reading TIFF needs tifffile (pip install sklearn-ddpm[formats]).") from error
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ValueError("no image series")
            series = tif.series[0]
            # tifffile names an axis it cannot tell "Q" (a TIFF written without axes metadata): the
            # shape then decides, by the rules of a plain zarr array.
            axes = None if "Q" in series.axes else series.axes
            if shape_only:
                return _Shape(series.shape), axes
            return series.asarray(), axes
    except Exception as error:  # tifffile raises many types for damaged or foreign files
        raise ValueError(f"{path}: not a TIFF file tifffile can read ({type(error).__name__}: {error}).") from error


def _read_zarr(path):
    try:
        import zarr
    except ImportError as error:  # pragma: no cover - the formats extra
        raise ImportError(f"{path}: reading zarr needs zarr (pip install sklearn-ddpm[formats]).") from error
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:
        raise ValueError(f"{path}: not a zarr store zarr can open ({type(error).__name__}: {error}).") from error
    if isinstance(node, zarr.Array):
        return node, None
    attributes = dict(node.attrs)
    multiscales = attributes.get("multiscales") or attributes.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ValueError(f"{path}: a zarr group without OME-Zarr 'multiscales' metadata; pass the path of an array "
                         "inside it.")
    first = multiscales[0]
    axes = "".join(("C" if a.get("type") == "channel" else a["name"].upper()) if isinstance(a, dict) else str(a).upper()
                   for a in first.get("axes", []))
    return node[first["datasets"][0]["path"]], axes or None


def _planes(array, axes, path):
    """``(Y, X[, C])`` planes of an array whose axes are ``axes`` (None: guessed from the shape)."""
    shape = tuple(array.shape)
    axes = _axes(shape, axes, path)
    if 0 in shape:
        raise ValueError(f"{path}: the array of shape {shape} (axes {axes}) holds no pixels.")
    order = [i for i, a in enumerate(axes) if a not in "YXC"] + [axes.index("Y"), axes.index("X")]
    order += [axes.index("C")] if "C" in axes else []
    data = np.asarray(array)
    data = np.transpose(data, order)
    n_image_axes = len(order) - (3 if "C" in axes else 2)
    return list(data.reshape((-1, *data.shape[n_image_axes:])))


def _axes(shape, axes, path):
    """The axis letters of an array of ``shape`` (``axes`` from the file, None: guessed), checked."""
    if axes is None:
        if len(shape) == 2:
            axes = "YX"
        elif len(shape) == 3:
            axes = "YXC" if shape[-1] <= 4 else "ZYX"
        elif len(shape) == 4:
            axes = "ZYXC"
        else:
            raise ValueError(f"{path}: an array of shape {shape} without axis names; expected 2-4 axes.")
    axes = axes.upper().replace("S", "C")
    if len(axes) != len(shape) or "Y" not in axes or "X" not in axes or axes.count("C") > 1:
        raise ValueError(f"{path}: axes {axes!r} of shape {shape} cannot be read as images (need Y, X, at most one "
                         "channel axis C/S; other axes count images).")
    return axes
