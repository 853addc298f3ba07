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


def bilinear_gather(table, image_index, ys, xs, heights, widths, map_size, out=None, row_offset=0):
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
    row_offset : int, default=0
        ``table`` holds rows ``row_offset:`` of maps of height ``map_size[0]`` (a strip of a large
        image's features); every sampled pixel must read rows inside it.

    Returns
    -------
    torch.Tensor of shape (n, C), float32
    """
    h, w = map_size
    flat = table.reshape(-1, table.shape[-1])
    y0, y1, wy = source_coordinates(ys, heights, h)
    x0, x1, wx = source_coordinates(xs, widths, w)
    if row_offset:
        y0, y1 = y0 - row_offset, y1 - row_offset
    base = image_index.to(torch.long) * (table.shape[1] * w)
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
    matrix, first = interpolation_rows(torch.arange(out_size, device=device), out_size, in_size, dtype)
    full = torch.zeros(out_size, in_size, dtype=dtype, device=device)
    full[:, first : first + matrix.shape[1]] = matrix
    return full


def interpolation_rows(positions, out_size, in_size, dtype=torch.float32):
    """Rows ``positions`` of :func:`interpolation_matrix`, restricted to the source pixels they read.

    Returns ``(weights, first)``: ``weights[:, j]`` is column ``first + j`` of the full matrix, and
    the columns span ``first`` to the last one with a non-zero weight. The entries are the full
    matrix's, bit for bit, without ever building an ``(out_size, in_size)`` matrix (10,000² float32
    for a large image's tiled features).
    """
    low, high, weight = source_coordinates(positions, out_size, in_size)
    first = int(low.min()) if len(low) else 0
    width = (int(high.max()) + 1 - first) if len(low) else 0
    rows = torch.arange(len(positions), device=positions.device)
    matrix = torch.zeros(len(positions), width, device=positions.device)
    matrix.index_put_((rows, low - first), 1 - weight, accumulate=True)
    matrix.index_put_((rows, high - first), weight, accumulate=True)  # low == high at the far edge: weights add to 1
    return matrix.to(dtype), first


def _support(matrix):
    """First and one-past-last column with a non-zero weight (bilinear weights are contiguous)."""
    columns = matrix.abs().sum(0).nonzero()[:, 0]
    return int(columns[0]), int(columns[-1]) + 1


class BandUpsampler:
    """Bands of rows of channels-last maps bilinearly upsampled to one size and summed.

    Parameters
    ----------
    maps : list of torch.Tensor of shape (h_i, w_i, C)
        One image's maps, possibly of different resolutions, all with ``C`` channels; or, with
        ``source_heights``, strips of rows of such maps.
    out_size : (int, int)
        Output ``(height, width)``.
    column_group : int, default=64
        Output columns computed per matrix product: each group reads only the few source columns
        its pixels blend, so the cost per pixel does not grow with the source width.
    source_heights : list of int, default=None
        Full height of each map when ``maps`` hold only rows ``row_offsets[i]:`` of them (a band
        of a large image's features); a band may then read only rows inside the strips.
    row_offsets : list of int, default=None
        First row of each strip (0s when None).
    """

    def __init__(self, maps, out_size, column_group=64, source_heights=None, row_offsets=None):
        self.height, self.width = (int(v) for v in out_size)
        self.channels = int(maps[0].shape[-1])
        self.dtype, device = maps[0].dtype, maps[0].device
        self.flat = [m.reshape(m.shape[0], m.shape[1] * m.shape[2]) for m in maps]  # (h_i, w_i * C)
        self.widths = [int(m.shape[1]) for m in maps]
        self.heights = [int(m.shape[0]) for m in maps] if source_heights is None else [int(h) for h in source_heights]
        self.row_offsets = [0] * len(maps) if row_offsets is None else [int(r) for r in row_offsets]
        # Column weights of all maps side by side: one product blends and sums every map's columns.
        starts = [0]
        for w in self.widths[:-1]:
            starts.append(starts[-1] + w)
        self.column_groups = []
        for start in range(0, self.width, column_group):
            stop = min(self.width, start + column_group)
            positions = torch.arange(start, stop, device=device)
            blocks, used = [], []
            for offset, w in zip(starts, self.widths):
                block, first = interpolation_rows(positions, self.width, w, self.dtype)
                keep = block.abs().sum(0).nonzero()[:, 0]
                blocks.append(block[:, keep])
                used.append(keep + first + offset)
            self.column_groups.append((start, stop, torch.cat(blocks, 1).contiguous(), torch.cat(used)))

    def source_rows(self, top, bottom):
        """``[(first, stop)]`` of the rows of each map that output rows ``top:bottom`` read."""
        positions = torch.arange(top, bottom)
        spans = []
        for height in self.heights:
            weights, first = interpolation_rows(positions, self.height, height)
            lo, hi = _support(weights)
            spans.append((first + lo, first + hi))
        return spans

    def use_strips(self, maps, row_offsets):
        """Read from new strips of the same maps (rows ``row_offsets[i]:`` of map ``i``)."""
        self.flat = [m.reshape(m.shape[0], m.shape[1] * m.shape[2]) for m in maps]
        self.row_offsets = [int(r) for r in row_offsets]

    def band(self, top, bottom):
        """Output rows ``top:bottom``: a contiguous ``(bottom - top, width, C)`` tensor."""
        rows = bottom - top
        positions = torch.arange(top, bottom, device=self.flat[0].device)
        parts = []
        for flat, width, height, offset in zip(self.flat, self.widths, self.heights, self.row_offsets):
            band_weights, first = interpolation_rows(positions, self.height, height, self.dtype)
            lo, hi = _support(band_weights)
            start = first + lo - offset
            if start < 0 or start + hi - lo > len(flat):
                raise ValueError(f"output rows {top}:{bottom} read source rows {first + lo}:{first + hi}, outside "
                                 f"the strip {offset}:{offset + len(flat)}.")
            parts.append((band_weights[:, lo:hi] @ flat[start : start + hi - lo]).reshape(rows, width, self.channels))
        source = torch.cat(parts, 1) if len(parts) > 1 else parts[0]  # (rows, sum of widths, C)
        out = torch.empty((rows, self.width, self.channels), dtype=source.dtype, device=source.device)
        for start, stop, weights, used in self.column_groups:
            torch.matmul(weights, source[:, used], out=out[:, start:stop])
        return out
