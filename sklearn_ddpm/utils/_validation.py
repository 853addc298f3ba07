"""Validation of image and mask inputs, with messages that name the offending item."""

import numbers

import numpy as np

from ._pixels import to_rgb_uint8


def check_images(images, name="X", channels=None, intensity="8bit"):
    """Validate images; return a list of ``(H, W, 3)`` uint8 RGB arrays.

    Accepts an ``(N, H, W, 3)`` array or a sequence of ``(H, W, 3)`` arrays (numpy, or array-likes
    such as zarr and dask arrays, read here), as uint8 (0-255), other integers in 0-255, or floats
    in [0, 1]. ``channels`` and ``intensity`` map other channel counts and value ranges
    (:func:`~sklearn_ddpm.utils._pixels.to_rgb_uint8`).
    """
    if isinstance(images, np.ndarray) or _is_array_like(images):
        if images.ndim != 4 and not (channels is not None and images.ndim == 3):
            raise ValueError(
                f"{name} must be an array of shape (n_images, height, width, 3) or a list of "
                f"(height, width, 3) images; got an array with shape {images.shape}. "
                "For a single image use X[None] (or [X])."
            )
        items = [images[i] for i in range(images.shape[0])]
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        raise TypeError(f"{name} must be an array or a list of images, got {type(images).__name__}.")
    if not items:
        raise ValueError(f"{name} holds no images.")
    return [to_rgb_uint8(image, channels, intensity, f"{name}[{i}]") for i, image in enumerate(items)]


def _is_array_like(images):
    """A zarr, dask or other array with numpy's shape protocol (not a list of images)."""
    return all(hasattr(images, a) for a in ("shape", "dtype", "ndim", "__getitem__", "__array__"))


def check_masks(masks, sizes, ignore_index=255, name="y"):
    """Validate label maps against image sizes; return a list of int64 ``(H, W)`` arrays."""
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3:
            raise ValueError(
                f"{name} must be label maps of shape (n_images, height, width) or a list of (height, width) "
                f"arrays; got an array with shape {masks.shape}."
            )
        items = list(masks)
    elif isinstance(masks, (list, tuple)):
        items = list(masks)
    else:
        raise TypeError(f"{name} must be an array or a list of label maps, got {type(masks).__name__}.")
    if len(items) != len(sizes):
        raise ValueError(f"{name} has {len(items)} masks but there are {len(sizes)} images.")
    checked = []
    for i, (mask, size) in enumerate(zip(items, sizes)):
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[-1] == 1:
            mask = mask[..., 0]
        if mask.ndim != 2:
            raise ValueError(f"{name}[{i}] has shape {mask.shape}; expected a 2-D label map.")
        check_mask_size(mask.shape, size, f"{name}[{i}]")
        if np.issubdtype(mask.dtype, np.floating):
            if not np.isfinite(mask).all():
                raise ValueError(f"{name}[{i}] contains NaN or infinite values.")
            if not np.all(mask == np.round(mask)):
                raise ValueError(f"{name}[{i}] has non-integer labels.")
        elif not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
            raise TypeError(f"{name}[{i}] has dtype {mask.dtype}; expected integer class labels.")
        mask = mask.astype(np.int64)
        bad = (mask < 0) & (mask != ignore_index)
        if bad.any():
            raise ValueError(
                f"{name}[{i}] has negative labels {np.unique(mask[bad])[:5].tolist()}; "
                f"labels must be 0..n_classes-1 or {ignore_index} (ignore)."
            )
        checked.append(mask)
    return checked


def check_mask_size(mask_shape, image_shape, mask="the mask", image="its image"):
    """Raise a ``ValueError`` naming both items when a mask's size differs from its image's.

    Parameters
    ----------
    mask_shape, image_shape : tuple of int
        ``(height, width, ...)``; only the first two entries are compared.
    mask, image : str
        How the two are called in the message, e.g. a file path or ``"y[3]"``.

    Examples
    --------
    >>> from sklearn_ddpm.utils._validation import check_mask_size
    >>> check_mask_size((4, 6), (4, 6, 3))
    >>> check_mask_size((4, 5), (4, 6, 3), "y[0]")
    Traceback (most recent call last):
        ...
    ValueError: y[0] is 5x4 (width x height) but its image is 6x4; a mask must have its image's size.
    """
    (mask_height, mask_width), (height, width) = tuple(mask_shape)[:2], tuple(image_shape)[:2]
    if (mask_height, mask_width) != (height, width):
        raise ValueError(f"{mask} is {mask_width}x{mask_height} (width x height) but {image} is {width}x{height}; "
                         "a mask must have its image's size.")


def check_int_tuple(value, name):
    """A tuple of ints from an int or a sequence of ints."""
    if isinstance(value, numbers.Integral):
        return (int(value),)
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}.") from None
    if not values or not all(isinstance(v, numbers.Integral) for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of ints, got {value!r}.")
    return tuple(int(v) for v in values)
