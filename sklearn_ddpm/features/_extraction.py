"""Running the UNet on noised images and capturing decoder-block activations."""

import contextlib

import numpy as np
import torch
from PIL import Image

from ..backbone import decoder_block_modules


class _StopForward(Exception):
    """Raised by a hook once the deepest wanted block ran: the rest of the UNet is not needed."""


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


def block_activations(unet, x, timesteps, blocks, autocast_dtype=None, runner=None):
    """Activations of decoder ``blocks`` for inputs ``x`` at ``timesteps``.

    ``runner`` calls the network (e.g. a ``torch.compile``-d ``unet``); hooks sit on ``unet``'s modules.

    Returns
    -------
    dict of int to torch.Tensor of shape (B, C, h, w)
    """
    taps = decoder_block_modules(unet)
    last = max(blocks)
    captured = {}

    def hook_for(k):
        def hook(module, args, output):
            captured[k] = output[0] if isinstance(output, (tuple, list)) else output
            if k == last:
                raise _StopForward

        return hook

    handles = [taps[k][1].register_forward_hook(hook_for(k)) for k in set(blocks)]
    autocast = (
        torch.autocast(device_type=x.device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), autocast:
            (runner or unet)(x, timesteps)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured
