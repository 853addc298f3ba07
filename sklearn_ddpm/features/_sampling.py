"""Exact bilinear sampling of native-resolution activations at output pixel positions.

``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` maps output pixel ``i``
of an ``out``-sized axis to the source position ``max((i + 0.5) * in / out - 0.5, 0)`` and blends
the two neighbouring source pixels. Sampling only the pixels a batch needs, with the same
arithmetic, gives the values of upsample-then-index without ever holding an upsampled map: a
256² image with 8448 channels would be 2.2 GB in float32.

``grid_sample`` computes the same blend but wants one call per image; here a batch mixes pixels of
many images, so the four neighbours are gathered from a flat ``(images * h * w, C)`` table at once.
"""

import torch


def source_coordinates(positions, out_size, in_size):
    """Low index, high index and weight of the high neighbour along one axis.

    Parameters
    ----------
    positions : torch.Tensor of int
        Output pixel indices.
    out_size : torch.Tensor of int
        Output axis length, per position (images may differ in size).
    in_size : int
        Source axis length.
    """
    scale = in_size / out_size.to(torch.float32)
    src = ((positions.to(torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    low = src.floor().to(torch.long).clamp_(max=in_size - 1)
    high = (low + 1).clamp_(max=in_size - 1)
    weight = src - low.to(torch.float32)
    return low, high, weight


def bilinear_gather(table, image_index, ys, xs, heights, widths, map_size, out=None):
    """Bilinearly sample rows of a channels-last activation table.

    Parameters
    ----------
    table : torch.Tensor of shape (n_images, h, w, C)
        Activations at native resolution, channels last.
    image_index, ys, xs : torch.Tensor of int, shape (n,)
        Which image and which output pixel to sample.
    heights, widths : torch.Tensor of int, shape (n,)
        Output size of the image each pixel belongs to.
    map_size : (int, int)
        ``(h, w)`` of the table.
    out : torch.Tensor of shape (n, C), default=None
        Where to write the float32 result.

    Returns
    -------
    torch.Tensor of shape (n, C), float32
    """
    h, w = map_size
    flat = table.reshape(-1, table.shape[-1])
    y0, y1, wy = source_coordinates(ys, heights, h)
    x0, x1, wx = source_coordinates(xs, widths, w)
    base = image_index.to(torch.long) * (h * w)
    wy, wx = wy[:, None], wx[:, None]
    top = flat[base + y0 * w + x0].float() * (1 - wx) + flat[base + y0 * w + x1].float() * wx
    bottom = flat[base + y1 * w + x0].float() * (1 - wx) + flat[base + y1 * w + x1].float() * wx
    result = top * (1 - wy) + bottom * wy
    if out is None:
        return result
    out.copy_(result)
    return out
