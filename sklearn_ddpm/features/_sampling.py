"""Exact bilinear sampling of native-resolution activations at output pixel positions.

One convention, ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``'s:
output pixel ``i`` of an ``out``-sized axis samples the source at ``max((i + 0.5) * in / out - 0.5, 0)``
(:func:`source_positions`), blending the two neighbouring source pixels (the last one repeats at the
far edge). Both samplers below follow it, so the values equal upsample-then-index without ever
holding an upsampled map: a 256² image with 8448 channels would be 2.2 GB in float32.

- :func:`bilinear_gather` samples arbitrary pixels of many images at once (training batches):
  ``grid_sample`` wants one call per image, so the four neighbours are gathered from a flat
  ``(images * h * w, C)`` table.
- :func:`bilinear_rows` upsamples a band of whole rows of one image (prediction), where
  ``grid_sample`` does the job in one pass.
"""

import torch
import torch.nn.functional as F


def source_positions(positions, out_size, in_size):
    """Continuous source coordinate of output pixels along one axis (the convention above).

    Parameters
    ----------
    positions : torch.Tensor of int
        Output pixel indices.
    out_size : int or torch.Tensor of int
        Output axis length, per position (images may differ in size).
    in_size : int
        Source axis length.
    """
    scale = in_size / torch.as_tensor(out_size, dtype=torch.float32, device=positions.device)
    return ((positions.to(torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)


def source_coordinates(positions, out_size, in_size):
    """Low index, high index and weight of the high neighbour along one axis.

    Parameters are those of :func:`source_positions`.
    """
    src = source_positions(positions, out_size, in_size)
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


def bilinear_rows(table, out_size, top, bottom):
    """Rows ``top:bottom`` of a channels-last map bilinearly upsampled to ``out_size``.

    Parameters
    ----------
    table : torch.Tensor of shape (h, w, C), float32
        One image's map at native resolution.
    out_size : (int, int)
        Output ``(height, width)``.
    top, bottom : int
        The band of output rows.

    Returns
    -------
    torch.Tensor of shape (bottom - top, width, C)
        A channels-last view (not contiguous).
    """
    h, w = table.shape[:2]
    height, width = out_size
    device = table.device

    def normalized(positions, out_length, in_length):
        # grid_sample(align_corners=False) reads grid value g at source ((g + 1) * in - 1) / 2;
        # border padding repeats the last pixel as source_coordinates' clamp does.
        return (2 * source_positions(positions, out_length, in_length) + 1) / in_length - 1

    ys = normalized(torch.arange(top, bottom, device=device), height, h)
    xs = normalized(torch.arange(width, device=device), width, w)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]  # (1, rows, width, 2) as (x, y)
    source = table.permute(2, 0, 1)[None]  # (1, C, h, w)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
