"""Preparing the UNet's inputs: resized images in the model's range and the seeded noise."""

import numpy as np
import torch
from PIL import Image


def resize_images(images, size):
    """Resize uint8 RGB images to ``size = (height, width)`` with Pillow (antialiased bilinear)."""
    height, width = size
    resized = []
    for image in images:
        if image.shape[:2] != (height, width):
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
        resized.append(image)
    return np.stack(resized)


def to_model_input(images_uint8):
    """``(B, H, W, 3)`` uint8 → ``(B, 3, H, W)`` float32 in [-1, 1], the DDPM's data range."""
    # a writable copy: the input may be a read-only view (e.g. of a PIL image)
    x = torch.from_numpy(np.array(images_uint8, copy=True)).permute(0, 3, 1, 2).to(torch.float32)
    return x / 127.5 - 1.0


def noise_for(seed, draw, step, shape, per_step, cell=(0, 0)):
    """The noise of one draw (and, with ``per_step``, one timestep); the same for every image.

    One fixed noise shared by all images is the paper's setting: it keeps features of an image
    independent of the other images in its batch, and lets activations be cached. ``cell``: which
    ``shape``-sized cell of the noise field of tiled images (:func:`tile_noise`); cell ``(0, 0)`` is
    the untiled noise.
    """
    key = [int(seed), int(draw)] + ([int(step)] if per_step else []) + ([int(v) for v in cell] if any(cell) else [])
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
    return torch.randn(shape, generator=generator)


def tile_noise(seed, draw, step, shape, per_step, offset):
    """The noise of the tile at ``offset = (row, column)`` of a tiled image's noise field.

    The field is a grid of ``shape``-sized cells (:func:`noise_for` of each cell), laid over the
    whole image's UNet input, so overlapping tiles see the same noise where they overlap and a
    tiled image is noised as one image of its full size would be, cell by cell. A tile at
    ``(0, 0)`` gets cell ``(0, 0)``, the untiled noise.
    """
    channels, height, width = shape
    top, left = (int(v) for v in offset)
    out = torch.empty(shape)
    for cy in range(top // height, (top + height - 1) // height + 1):
        for cx in range(left // width, (left + width - 1) // width + 1):
            cell = noise_for(seed, draw, step, shape, per_step, (cy, cx))
            y0, y1 = max(top, cy * height), min(top + height, (cy + 1) * height)
            x0, x1 = max(left, cx * width), min(left + width, (cx + 1) * width)
            out[:, y0 - top : y1 - top, x0 - left : x1 - left] = cell[:, y0 - cy * height : y1 - cy * height,
                                                                      x0 - cx * width : x1 - cx * width]
    return out
