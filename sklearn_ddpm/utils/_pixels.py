"""Pixel formats: any number of channels and any numeric type, mapped to the backbone's 8-bit RGB.

Diffusion backbones read 3 channels in [-1, 1], made from 8-bit RGB. Two settings map other data
onto that, one question each:

- ``channels``, which channels become R, G and B: None (the image must be RGB); a tuple of three
  channel indices (``(2, 1, 0)`` for BGR, ``(0, 3, 5)`` for three bands of a multispectral image); a
  tuple of one index (that channel as gray, copied to R, G and B); or "mean" (the mean of all
  channels as gray). A 2-D image is one channel.
- ``intensity``, how values become 0-255: "8bit" takes uint8 as is, other integers in 0-255 as
  they are, and floats in [0, 1] times 255 (anything else is refused); "percentile" maps each
  channel's ``PERCENTILES`` linearly onto 0-255 and clips, for 16-bit, 32-bit and float data
  whose range says nothing about brightness (microscopy, remote sensing).
"""

import numpy as np

#: the low and high percentiles ``intensity="percentile"`` maps to 0 and 255
PERCENTILES = (0.5, 99.5)
#: pixels a channel's percentiles are estimated from (an even subsample of larger images)
PERCENTILE_SAMPLE = 2**22


def to_rgb_uint8(image, channels=None, intensity="8bit", name="X[0]"):
    """One image as ``(height, width, 3)`` uint8, by the rules of ``channels`` and ``intensity``.

    Parameters
    ----------
    image : array-like of shape (height, width) or (height, width, n_channels)
        numpy, or anything ``np.asarray`` reads (a zarr or dask array is read here).
    channels : None, "mean" or tuple of int, default=None
    intensity : {"8bit", "percentile"}, default="8bit"
    name : str
        How errors name the image (a file name, or ``X[i]``).

    Returns
    -------
    ndarray of shape (height, width, 3), uint8

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.utils._pixels import to_rgb_uint8
    >>> stack = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5) * 1000
    >>> to_rgb_uint8(stack, channels=(4, 2, 0), intensity="percentile").shape
    (2, 3, 3)
    >>> to_rgb_uint8(stack[..., 0], channels="mean", intensity="percentile")[0, :, 0].tolist()
    [0, 50, 102]
    """
    image = np.asarray(image)
    if image.dtype == object or not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"{name} has dtype {image.dtype}; expected numeric pixel values.")
    if channels is None:
        if image.ndim != 3 or image.shape[-1] != 3:
            hint = (" (grayscale? pass channels='mean', or convert with PIL's .convert('RGB'))" if image.ndim == 2
                    else " (RGBA? drop the alpha channel, pass channels=(0, 1, 2), or use PIL's .convert('RGB'))"
                    if image.ndim == 3 and image.shape[-1] == 4
                    else f" (pass channels=(r, g, b) indices or channels='mean' to map {image.shape[-1]} channels)"
                    if image.ndim == 3 else "")
            raise ValueError(f"{name} has shape {image.shape}; expected an RGB image of shape (height, width, 3){hint}.")
    else:
        image = _mapped_channels(image, channels, name)
    if min(image.shape[:2]) < 2:
        raise ValueError(f"{name} has shape {image.shape}; images must be at least 2x2 pixels.")
    if intensity == "percentile":
        return _percentile_uint8(image, name)
    if intensity != "8bit":
        raise ValueError(f"intensity must be '8bit' or 'percentile', got {intensity!r}.")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{name} contains NaN or infinite values.")
        if image.min() < 0 or image.max() > 1:
            raise ValueError(
                f"{name} is a float image with values in [{image.min():g}, {image.max():g}]; float images must "
                "be in [0, 1] (or pass uint8 in 0-255, or intensity='percentile')."
            )
        return np.round(image * 255).astype(np.uint8)
    if image.min() < 0 or image.max() > 255:
        raise ValueError(f"{name} has values outside 0-255 ({image.dtype}, {image.min()}-{image.max()}); "
                         "for 16-bit or other high-range data pass intensity='percentile'.")
    return image.astype(np.uint8)


def _mapped_channels(image, channels, name):
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"{name} has shape {image.shape}; expected (height, width) or (height, width, channels).")
    n = image.shape[-1]
    if isinstance(channels, str):
        if channels != "mean":
            raise ValueError(f"channels must be None, 'mean' or a tuple of channel indices, got {channels!r}.")
        gray = image[..., 0] if n == 1 else image.mean(-1, dtype=np.float64)
        if n > 1 and np.issubdtype(image.dtype, np.integer):
            gray = np.round(gray)  # the mean of integer channels stays on the same integer scale
        return np.repeat(np.asarray(gray, dtype=image.dtype if n == 1 or np.issubdtype(image.dtype, np.integer)
                                    else np.float64)[..., None], 3, -1)
    picked = [int(c) for c in channels]
    if len(picked) not in (1, 3):
        raise ValueError(f"channels={channels!r}: give 3 channel indices (R, G, B) or 1 (gray).")
    bad = [c for c in picked if not -n <= c < n]
    if bad:
        raise ValueError(f"{name} has {n} channel(s) (shape {image.shape}); channels {bad} do not exist.")
    return image[..., picked * 3 if len(picked) == 1 else picked]


def _percentile_uint8(image, name):
    data = image.astype(np.float32, copy=False) if image.dtype != np.float64 else image
    if not np.isfinite(data).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    flat = data.reshape(-1, data.shape[-1])
    sample = flat[:: max(1, len(flat) // PERCENTILE_SAMPLE)]
    low, high = np.percentile(sample, PERCENTILES, axis=0)
    span = np.where(high > low, high - low, 1.0)
    out = np.empty(data.shape, np.uint8)
    rows = max(1, 2**24 // (data.shape[1] * data.shape[2]))  # a band at a time: no float copy of a large image
    for top in range(0, len(data), rows):
        band = (data[top : top + rows] - low) * (255.0 / span)
        out[top : top + rows] = np.clip(np.round(band), 0, 255)
    return out
