"""Training images of :func:`train_ddpm`: loading, and the random crops and flips of each batch."""

import math
import os

import numpy as np
import torch
from PIL import Image

from ..datasets._folders import list_images
from ..datasets._io import read_image

# Smallest crop, as a fraction of the image area, and the aspect-ratio jitter of a crop.
_MIN_CROP_AREA = 0.6
_MAX_ASPECT_JITTER = 4.0 / 3.0
# Images are kept in memory at this multiple of the model resolution (short side) so that random
# crops stay sharp without holding full-size photos.
_CACHE_SCALE = 1.5


def load_images(images, image_size):
    """Read ``images`` (a folder, or a list of arrays and/or paths) as PIL images sized for caching."""
    if isinstance(images, (str, os.PathLike)):
        images = list_images(images, argument="images")
    images = list(images)
    if not images:
        raise ValueError("images is empty; train_ddpm needs at least one image.")
    return [_as_pil(item, i, image_size) for i, item in enumerate(images)]


def _as_pil(item, index, image_size):
    if isinstance(item, (str, os.PathLike)):
        arr = read_image(item)
    else:
        arr = np.asarray(item)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(
                f"images[{index}] must be an HxWx3 uint8 array, got shape {arr.shape} and dtype "
                f"{arr.dtype}."
            )
    img = Image.fromarray(arr)
    short = min(img.size)
    target = int(round(_CACHE_SCALE * image_size))
    if short > target:
        scale = target / short
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.LANCZOS)
    return img


def _draw_crop(size, rng):
    """The random crop box and flip of one sample: five draws from ``rng``, whatever the image."""
    w, h = size
    area = rng.uniform(_MIN_CROP_AREA, 1.0)
    ratio = math.exp(rng.uniform(-math.log(_MAX_ASPECT_JITTER), math.log(_MAX_ASPECT_JITTER)))
    # Relative to the image's own aspect, so a full crop is the whole image, squashed to a square
    # like a whole image fed to the feature extractor.
    cw = min(1.0, math.sqrt(area * ratio)) * w
    ch = min(1.0, math.sqrt(area / ratio)) * h
    x0 = rng.uniform(0.0, w - cw)
    y0 = rng.uniform(0.0, h - ch)
    return (x0, y0, x0 + cw, y0 + ch), rng.random() < 0.5


def _apply_crop(img, box, flip, image_size):
    """Crop ``box``, resize to the square input, flip; float32 HxWx3 in [-1, 1]."""
    out = img.resize((image_size, image_size), Image.BICUBIC, box=box)
    arr = np.asarray(out, dtype=np.float32)
    if flip:
        arr = arr[:, ::-1]
    return arr / 127.5 - 1.0


def sample_batch(pil_images, rng, batch_size, image_size, rows=slice(None)):
    """A ``(n_rows, 3, image_size, image_size)`` float tensor in [-1, 1] of augmented images.

    ``rng`` (a NumPy ``Generator``) draws the images and their crops and flips of all
    ``batch_size`` samples, in the same order whatever ``rows`` is; only the samples ``rows``
    selects are decoded. The processes of a data-parallel run share ``rng``'s seed and each
    builds its own slice, so together they train on the batch a single process would.
    """
    idx = rng.integers(0, len(pil_images), size=batch_size)
    draws = [_draw_crop(pil_images[i].size, rng) for i in idx]
    keep = range(batch_size)[rows]
    batch = np.stack([_apply_crop(pil_images[idx[j]], *draws[j], image_size) for j in keep])
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
