"""Images stored as arrays: TIFF files and stacks (tifffile), zarr arrays and OME-Zarr images.

Each reader returns the images a file holds as ``(height, width, 3)`` uint8 RGB, mapped by the
rules of ``channels`` and ``intensity`` (:func:`sklearn_ddpm.utils._pixels.to_rgb_uint8`): a
16-bit microscopy stack is read with ``intensity="percentile"`` and, for one channel or many,
``channels="mean"`` or the indices of the channels to show as R, G and B.

Axes: a TIFF's axes are tifffile's (``series[0].axes``): ``Y`` and ``X`` are the image, ``C`` or
``S`` its channels, every other axis (``Z``, ``T``, ``Q``, ``I``) counts images. An OME-Zarr image
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
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file not found: {path}")
    name = str(path).lower().rstrip("/")
    if name.endswith((".tif", ".tiff")):
        array, axes = _read_tiff(path)
    elif name.endswith(".zarr"):
        array, axes = _read_zarr(path)
    else:
        raise ValueError(f"{path}: not a TIFF file or zarr store (expected one of {', '.join(ARRAY_EXTENSIONS)}).")
    planes = _planes(array, axes, path)
    return [to_rgb_uint8(plane, channels, intensity, f"{path}[{k}]" if len(planes) > 1 else str(path))
            for k, plane in enumerate(planes)]


def _read_tiff(path):
    try:
        import tifffile
    except ImportError as error:  # pragma: no cover - the formats extra
        raise ImportError(f"{path}: reading TIFF needs tifffile (pip install sklearn-ddpm[formats]).") from error
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes
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
    order = [i for i, a in enumerate(axes) if a not in "YXC"] + [axes.index("Y"), axes.index("X")]
    order += [axes.index("C")] if "C" in axes else []
    data = np.asarray(array)
    data = np.transpose(data, order)
    n_image_axes = len(order) - (3 if "C" in axes else 2)
    return list(data.reshape((-1, *data.shape[n_image_axes:])))
