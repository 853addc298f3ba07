"""Exact bilinear sampling of native-resolution activations at output pixel positions.

One convention, ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``'s:
output pixel ``i`` of an ``out``-sized axis samples the source at ``max((i + 0.5) * in / out - 0.5, 0)``
(:func:`source_positions`), blending the two neighbouring source pixels (the last one repeats at the
far edge). Both samplers below follow it, so the values equal upsample-then-index without ever
holding an upsampled map: a 256² image with 8448 channels would be 2.2 GB in float32.

- :func:`bilinear_gather` samples arbitrary pixels of many images at once (training batches):
  ``grid_sample`` wants one call per image, so the four neighbours are gathered from a flat
  ``(images * h * w, C)`` table.
- :class:`BandUpsampler` upsamples bands of whole rows of one image's maps (prediction) and
  sums maps of different resolutions on the way: bilinear upsampling is separable, so each axis
  is a small matrix product with the interpolation weights (two non-zeros a row), restricted to
  the source pixels a band or a group of output columns reads. On a CPU this runs at matrix-product
  speed, where ``grid_sample`` and gather-and-blend spend their time on strided memory traffic.
"""

import torch


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
    # One index_select of the four neighbours: several times faster than four advanced indexings.
    corners = torch.cat([base + y0 * w + x0, base + y0 * w + x1, base + y1 * w + x0, base + y1 * w + x1])
    top_left, top_right, bottom_left, bottom_right = flat.index_select(0, corners).float().chunk(4)
    top = top_left * (1 - wx) + top_right * wx
    bottom = bottom_left * (1 - wx) + bottom_right * wx
    result = top * (1 - wy) + bottom * wy
    if out is None:
        return result
    out.copy_(result)
    return out


def interpolation_matrix(out_size, in_size, dtype=torch.float32, device=None):
    """``(out_size, in_size)`` weights of bilinear upsampling along one axis: ``A @ x`` upsamples ``x``."""
    low, high, weight = source_coordinates(torch.arange(out_size, device=device), out_size, in_size)
    rows = torch.arange(out_size, device=device)
    matrix = torch.zeros(out_size, in_size, device=device)
    matrix.index_put_((rows, low), 1 - weight, accumulate=True)
    matrix.index_put_((rows, high), weight, accumulate=True)  # low == high at the far edge: weights add to 1
    return matrix.to(dtype)


def _support(matrix):
    """First and one-past-last column with a non-zero weight (bilinear weights are contiguous)."""
    columns = matrix.abs().sum(0).nonzero()[:, 0]
    return int(columns[0]), int(columns[-1]) + 1


class BandUpsampler:
    """Bands of rows of channels-last maps bilinearly upsampled to one size and summed.

    Parameters
    ----------
    maps : list of torch.Tensor of shape (h_i, w_i, C)
        One image's maps, possibly of different resolutions, all with ``C`` channels.
    out_size : (int, int)
        Output ``(height, width)``.
    column_group : int, default=64
        Output columns computed per matrix product: each group reads only the few source columns
        its pixels blend, so the cost per pixel does not grow with the source width.
    """

    def __init__(self, maps, out_size, column_group=64):
        self.height, self.width = (int(v) for v in out_size)
        self.channels = int(maps[0].shape[-1])
        dtype, device = maps[0].dtype, maps[0].device
        self.flat = [m.reshape(m.shape[0], -1) for m in maps]  # (h_i, w_i * C)
        self.widths = [int(m.shape[1]) for m in maps]
        self.row_weights = [interpolation_matrix(self.height, int(m.shape[0]), dtype, device) for m in maps]
        # Column weights of all maps side by side: one product blends and sums every map's columns.
        columns = torch.cat([interpolation_matrix(self.width, w, dtype, device) for w in self.widths], 1)
        self.column_groups = []
        for start in range(0, self.width, column_group):
            block = columns[start : start + column_group]
            used = block.abs().sum(0).nonzero()[:, 0]
            self.column_groups.append((start, start + len(block), block[:, used].contiguous(), used))

    def band(self, top, bottom):
        """Output rows ``top:bottom``: a contiguous ``(bottom - top, width, C)`` tensor."""
        rows = bottom - top
        parts = []
        for flat, width, weights in zip(self.flat, self.widths, self.row_weights):
            band_weights = weights[top:bottom]
            lo, hi = _support(band_weights)
            parts.append((band_weights[:, lo:hi] @ flat[lo:hi]).reshape(rows, width, self.channels))
        source = torch.cat(parts, 1) if len(parts) > 1 else parts[0]  # (rows, sum of widths, C)
        out = torch.empty((rows, self.width, self.channels), dtype=source.dtype, device=source.device)
        for start, stop, weights, used in self.column_groups:
            torch.matmul(weights, source[:, used], out=out[:, start:stop])
        return out
