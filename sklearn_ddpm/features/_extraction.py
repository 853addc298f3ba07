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


def noise_for(seed, draw, step, shape, per_step):
    """The noise of one draw (and, with ``per_step``, one timestep); the same for every image.

    One fixed noise shared by all images is the paper's setting: it keeps features of an image
    independent of the other images in its batch, and lets activations be cached.
    """
    key = [int(seed), int(draw)] + ([int(step)] if per_step else [])
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
    return torch.randn(shape, generator=generator)
