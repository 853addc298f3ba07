"""Reading images and label masks from disk."""

import contextlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def image_extensions():
    """Return the lower-case file extensions Pillow can open (e.g. ``".jpg"``)."""
    return {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def read_image(path):
    """Read an image file as an RGB ``uint8`` array.

    The EXIF orientation is applied, so the array looks like the photo does in a viewer.
    Grayscale, palette and RGBA images are converted to RGB (alpha is dropped) with a
    ``UserWarning`` naming the file.

    Parameters
    ----------
    path : str or path-like
        Any file Pillow can read.

    Returns
    -------
    image : ndarray of shape (H, W, 3), dtype uint8

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file, if it is not an image Pillow can decode, has no pixels, or declares more
        than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a decompression bomb: refused before
        its pixels are allocated).

    Examples
    --------
    >>> from sklearn_ddpm.datasets import read_image
    >>> image = read_image("horse001.jpg")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((240, 320, 3), dtype('uint8'))
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file not found: {path}")
    with _decoding(path, "an image"):
        with Image.open(path) as img:
            _check_size(img, path)  # before the pixels are decoded
            img = ImageOps.exif_transpose(img)
            img.load()
    if img.mode != "RGB":
        warnings.warn(
            f"{path}: image mode {img.mode!r} converted to RGB.", UserWarning, stacklevel=2
        )
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


#: Pillow modes of more than 8 bits per sample, read as stored (never converted to 8-bit RGB)
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def read_image_pixels(path, channels=None):
    """An image file's pixels as Pillow decodes them, for a ``channels`` / ``intensity`` mapping.

    With ``channels=None`` an 8-bit image is read as :func:`read_image` reads it (RGB; grayscale,
    palette and RGBA converted with a warning), so folders of photos read as they always have.
    Otherwise, and for 16-bit, 32-bit and float images (PNG ``I;16``, ``I``, ``F`` modes), the
    values are kept: ``(H, W)`` for one channel, ``(H, W, C)`` for several (RGBA, CMYK, LA);
    palette images become their RGB colours and 1-bit images 0/255. The EXIF orientation is
    applied either way.

    Parameters
    ----------
    path : str or path-like
    channels : None, "mean" or tuple of int, default=None
        The mapping the pixels are for (see :func:`~sklearn_ddpm.utils._pixels.to_rgb_uint8`).

    Returns
    -------
    ndarray of shape (H, W) or (H, W, C)

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_image`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file not found: {path}")
    with _decoding(path, "an image"):
        with Image.open(path) as img:
            _check_size(img, path)
            mode = img.mode
    if channels is None and mode not in HIGH_DEPTH_MODES:
        return read_image(path)
    with _decoding(path, "an image"):
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            if img.mode in ("P", "PA"):
                img = img.convert("RGB")
            elif img.mode == "1":
                img = img.convert("L")
            pixels = np.array(img)  # writable, unlike np.asarray of a PIL image
    if pixels.dtype.byteorder not in ("=", "|"):
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))  # big-endian 16-bit PNG rows
    return pixels


def read_mask(path):
    """Read a label mask of class indices.

    Parameters
    ----------
    path : str or path-like
        A single-channel image of class indices (e.g. an 8-bit PNG), a palette PNG (its palette
        indices are the class indices), or a ``.npy`` file holding a 2-D integer array.

    Returns
    -------
    mask : ndarray of shape (H, W)
        ``uint8`` for 8-bit images, the stored integer dtype for ``.npy`` and 16-bit images.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file, if it cannot be read, has no pixels, declares more data than it holds
        (decompression bombs, refused before allocation), or does not hold a 2-D integer mask
        (an RGB image, float values, say).

    Examples
    --------
    >>> from sklearn_ddpm.datasets import read_mask
    >>> mask = read_mask("horse001.png")  # doctest: +SKIP
    >>> mask.shape, sorted(set(mask.ravel()))  # doctest: +SKIP
    ((240, 320), [0, 1])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Mask file not found: {path}")
    if path.suffix.lower() == ".npy":
        with _decoding(path, "a .npy mask"):
            _check_npy_header(path)  # before the array is allocated
            mask = np.load(path, allow_pickle=False)
    else:
        with _decoding(path, "a mask image"):
            with Image.open(path) as img:
                _check_size(img, path)
                img.load()
                mode = img.mode
                mask = np.array(img)  # writable, unlike np.asarray of a PIL image
        # Palette images keep their indices; converting them would produce colours.
        if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
            raise ValueError(
                f"{path}: mask must be a single-channel or palette image of class "
                f"indices, got mode {mode!r}."
            )
    if mask.size == 0:
        raise ValueError(f"{path}: the mask has no pixels (shape {mask.shape}).")
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D (H, W), got shape {mask.shape}.")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{path}: a mask must hold integer class indices, got {mask.dtype}.")
    return mask


@contextlib.contextmanager
def _decoding(path, what):
    """Turn any failure to decode ``path`` into a ValueError that names it.

    Decoders of hostile files fail in many ways (``OSError`` for truncation, ``SyntaxError``,
    ``struct.error``, ``EOFError``, ``IndexError`` ... from Pillow's plugins, ``EOFError`` from
    numpy); a caller gets one exception type with the file's name.
    """
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path} was refused before decoding: {exc} Raise PIL.Image.MAX_IMAGE_PIXELS to read "
                         "a larger image you trust.") from None
    except _NamedError:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise ValueError(f"Cannot read {path} as {what}: {type(exc).__name__}: {exc}") from exc


class _NamedError(ValueError):
    """A ValueError that already names the file."""


def _check_size(img, path):
    """Refuse an image with no pixels (a header can declare a zero width or height)."""
    if img.width < 1 or img.height < 1:
        raise _NamedError(f"{path}: the image has no pixels ({img.width} x {img.height}).")


def _check_npy_header(path):
    """Refuse a ``.npy`` file whose header declares another size than the data it holds.

    ``np.load`` allocates the declared array before reading: a 100-byte file can declare 80 GB.
    """
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        version = npy.read_magic(f)
        readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in readers:
            raise _NamedError(f"{path}: .npy format version {version} is not supported (1.0 and 2.0 are).")
        shape, _, dtype = readers[version](f)
        data_bytes = path.stat().st_size - f.tell()
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if dtype.hasobject or declared != data_bytes:
        raise _NamedError(f"{path} declares a {shape} {dtype} array ({declared:,} bytes) but holds {data_bytes:,} "
                          "bytes of data: it is damaged or not a plain array.")


def load_split_folder(root, split, *, image_dir, mask_dir, splits_file="splits.json", n=None,
                      with_masks=True, dataset="data set"):
    """Read the images (and masks) of one split of a ``splits.json`` folder layout.

    Returns ``(images, masks, names, readme_text)``; ``masks`` is None when ``with_masks`` is
    False. ``n`` keeps the first ``n`` names in the split's listed order.
    """
    import json

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{dataset} folder not found: {root}. Pass root= the folder holding {splits_file}."
        )
    splits = json.loads((root / splits_file).read_text())
    available = sorted(k for k, v in splits.items() if isinstance(v, list))
    if split not in available:
        raise ValueError(f"Unknown split {split!r} for {dataset}; choose one of {available}.")
    names = list(splits[split])
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= len(names):
            raise ValueError(f"n must be an integer in [1, {len(names)}] for split {split!r}, got {n!r}.")
        names = names[: int(n)]
    images = [read_image(_find(root / image_dir, name)) for name in names]
    masks = None
    if with_masks:
        masks = [read_mask(_find(root / mask_dir, name)) for name in names]
        for name, img, mask in zip(names, images, masks):
            if mask.shape != img.shape[:2]:
                raise ValueError(f"{dataset}: mask of {name} is {mask.shape}, image is {img.shape[:2]}.")
    readme = root / "README.md"
    descr = readme.read_text() if readme.is_file() else ""
    return images, masks, names, descr


def _find(folder, name):
    path = folder / name
    if path.is_file():
        return path
    matches = sorted(folder.glob(f"{name}.*"))
    if not matches:
        raise FileNotFoundError(f"No file named {name}(.*) in {folder}.")
    return matches[0]


def shrink_pairs(images, masks, max_side=256):
    """Scale images (bilinear) and masks (nearest) so their longer side is at most ``max_side``.

    The paper scores at 256 px; smaller images also keep CPU runs quick. Images already small
    enough are returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.datasets import shrink_pairs
    >>> images, masks = shrink_pairs([np.zeros((400, 200, 3), np.uint8)], [np.zeros((400, 200), np.uint8)])
    >>> images[0].shape, masks[0].shape
    ((256, 128, 3), (256, 128))
    """
    out_images, out_masks = [], []
    for image, mask in zip(images, masks):
        scale = min(1.0, max_side / max(image.shape[:2]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        out_images.append(np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)))
        out_masks.append(np.asarray(Image.fromarray(np.asarray(mask, np.uint8)).resize(size, Image.NEAREST)))
    return out_images, out_masks
