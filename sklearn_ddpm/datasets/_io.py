"""Reading images and label masks from disk."""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


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
        If the file is not an image Pillow can decode.

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
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"Cannot read {path} as an image: {exc}") from exc
    if img.mode != "RGB":
        warnings.warn(
            f"{path}: image mode {img.mode!r} converted to RGB.", UserWarning, stacklevel=2
        )
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


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
        If the file cannot be read or does not hold a 2-D integer mask (an RGB image, say).

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
        try:
            mask = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"Cannot read {path} as a .npy mask: {exc}") from exc
    else:
        try:
            with Image.open(path) as img:
                img.load()
                # Palette images keep their indices; converting them would produce colours.
                if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                    raise ValueError(
                        f"{path}: mask must be a single-channel or palette image of class "
                        f"indices, got mode {img.mode!r}."
                    )
                mask = np.asarray(img)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"Cannot read {path} as a mask image: {exc}") from exc
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D (H, W), got shape {mask.shape}.")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{path}: a mask must hold integer class indices, got {mask.dtype}.")
    return mask
