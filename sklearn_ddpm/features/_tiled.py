"""Features of tiled images: one blended native-resolution mosaic per image and layer.

Built by :func:`tiled_features` for ``DDPMFeatureTransformer(tile=...)``. Each image has its own
map size (its model grid), so the maps are kept per image; an image whose mosaics would be large
keeps a :class:`~sklearn_ddpm.features._tiling.TileMosaic` instead, which runs the tiles and blends
the rows a band of output rows reads when it is read, so prediction holds a few tile rows, never
the image's features.
"""

import numpy as np
import torch

from ._container import PixelFeatures
from ._sampling import BandUpsampler, bilinear_gather, source_coordinates
from ._tiling import LazyTiles, TileMosaic, tile_grid

#: an image's blended maps up to this size are computed at transform and kept; larger ones are
#: computed band by band when read (prediction of a large image)
EAGER_MOSAIC_BYTES = 256 * 2**20
#: output pixels a band of a large image's :meth:`TiledPixelFeatures.gather` covers
GATHER_BAND_PIXELS = 2**20


def tiled_features(transformer, images, lazy=False):
    """:class:`TiledPixelFeatures` of ``images`` (uint8 RGB) for a fitted tiling transformer.

    ``lazy=True`` computes every image's mosaics band by band when read, whatever their size (a
    Dask task that predicts a few rows of an image runs only the tiles those rows read).
    """
    tile = transformer.tile_size_
    dtype = torch.float16 if transformer.feature_dtype == "float16" else torch.float32
    blocks = {b.index: b for b in transformer.backbone_.decoder_blocks(transformer.input_size_)}
    layers = [(name, tile // blocks[name[1]].resolution[0], blocks[name[1]].channels)
              for name in transformer.layer_names_]
    multiple = transformer.backbone_.size_multiple
    grids = [tile_grid(image.shape[:2], tile, transformer.tile_overlap_, transformer.scale, multiple)
             for image in images]
    item = torch.empty((), dtype=dtype).element_size()
    eager = [
        not lazy
        and sum((g.grid_size[0] // f) * (g.grid_size[1] // f) * c for _, f, c in layers) * item <= EAGER_MOSAIC_BYTES
        for g in grids
    ]
    # The tiles of all eagerly computed images go through the UNet together, in as few passes as
    # the batch size allows (images that are one tile each: exactly the untiled transformer's passes).
    units, offsets, first = [], [], {}
    for i, (image, grid) in enumerate(zip(images, grids)):
        if eager[i]:
            model_image = grid.model_image(image)
            for row in range(len(grid.offsets[0])):
                first[(i, row)] = len(offsets)
                units.append(grid.tiles(model_image, row))
                offsets.extend(grid.tile_offsets(row))
    maps = transformer._unit_maps(np.concatenate(units), offsets=offsets) if units else {}
    per_image = []
    for i, (image, grid) in enumerate(zip(images, grids)):
        if eager[i]:
            n_columns = len(grid.offsets[1])

            def row_maps(row, i=i, n_columns=n_columns):
                start = first[(i, row)]
                return {name: m[start : start + n_columns] for name, m in maps.items()}

            mosaic = TileMosaic(grid, layers, row_maps, dtype)
            per_image.append({name: mosaic.whole(name) for name, _, _ in layers})
        else:
            per_image.append(TileMosaic(grid, layers, LazyTiles(transformer, image, grid), dtype))
    channels = [c for _, _, c in layers]
    return TiledPixelFeatures(per_image, transformer.layer_names_, [g.image_size for g in grids], channels, dtype,
                              images=images)


class TiledPixelFeatures(PixelFeatures):
    """:class:`PixelFeatures` of tiled images: per image, one map per layer of its own size.

    The output of ``DDPMFeatureTransformer(tile=...)``; used like :class:`PixelFeatures`
    (``gather``, ``projected_bands``, ``select``, indexing), with the same upsampling convention.

    Parameters
    ----------
    per_image : list
        For each image: ``{(timestep, block): tensor (h, w, C)}``, its blended maps; or a
        ``TileMosaic``, which computes them band by band when read.
    layer_names : list of (int, int)
    image_sizes : array-like of shape (n_images, 2)
    channels : list of int
        Channels of each layer.
    dtype : torch.dtype
        Storage type of the maps.
    images, mirrored :
        As for :class:`PixelFeatures`.
    """

    def __init__(self, per_image, layer_names, image_sizes, channels, dtype, images=None, mirrored=None):
        self.per_image = list(per_image)
        self.maps = None  # per image, not one tensor per layer
        self.images = None if images is None else list(images)
        self.mirrored = mirrored
        self.layer_names = [tuple(int(v) for v in name) for name in layer_names]
        self.image_sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
        self._channels = [int(c) for c in channels]
        self._dtype = dtype
        if len(self.per_image) != len(self.image_sizes):
            raise ValueError(f"{len(self.per_image)} images' maps for {len(self.image_sizes)} image sizes.")
        self.n_features = int(sum(self._channels))

    @property
    def nbytes(self):
        """Bytes held by the blended maps (images computed band by band hold none)."""
        return int(sum(m.numel() * m.element_size() for maps in self.per_image if isinstance(maps, dict)
                       for m in maps.values()))

    @property
    def dtype(self):
        return self._dtype

    def is_lazy(self, i):
        """Whether image ``i``'s features are computed band by band when read."""
        return isinstance(self.per_image[i], TileMosaic)

    def _layer_channels(self):
        return self._channels

    def _native_maps(self, i):
        maps = self.per_image[i]
        if isinstance(maps, TileMosaic):
            return [maps.whole(name) for name in self.layer_names]
        return [maps[name] for name in self.layer_names]

    def select(self, layers):
        """A view with only the given ``(timestep, block)`` layers, in the given order."""
        picked = self._layer_positions(layers)
        names = [tuple(name) for name in layers]
        per_image = [maps if isinstance(maps, TileMosaic) else {name: maps[name] for name in names}
                     for maps in self.per_image]
        return TiledPixelFeatures(per_image, names, self.image_sizes, [self._channels[i] for i in picked],
                                  self._dtype, self.images, None if self.mirrored is None else self.mirrored.select(layers))

    def __getitem__(self, index):
        """Subset of images (int, slice or index array)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        rows = np.arange(len(self))[index]
        return TiledPixelFeatures([self.per_image[r] for r in rows], self.layer_names, self.image_sizes[rows],
                                  self._channels, self._dtype,
                                  None if self.images is None else [self.images[r] for r in rows],
                                  None if self.mirrored is None else self.mirrored[rows])

    def gather(self, image_index, ys, xs, device=None):
        """Feature vectors of the given pixels, float32, shape ``(n, n_features)`` (see :class:`PixelFeatures`)."""
        image_index, ys, xs = (np.asarray(a, dtype=np.int64).ravel() for a in (image_index, ys, xs))
        out = torch.empty((len(image_index), self.n_features), dtype=torch.float32)
        slices = self.channel_slices()
        for i in np.unique(image_index):
            picked = np.flatnonzero(image_index == i)
            height, width = (int(v) for v in self.image_sizes[i])
            maps = self.per_image[i]
            if isinstance(maps, TileMosaic):
                band = max(1, GATHER_BAND_PIXELS // width)
                bands = ys[picked] // band
                for b in np.unique(bands):
                    sub = picked[bands == b]
                    self._gather_rows(maps, sub, ys[sub], xs[sub], (height, width), slices, out)
                continue
            y, x = torch.as_tensor(ys[picked]), torch.as_tensor(xs[picked])
            zeros = torch.zeros(len(picked), dtype=torch.long)
            for name in self.layer_names:
                m = maps[name]
                values = bilinear_gather(m[None], zeros, y, x, height, width, tuple(m.shape[:2]))
                out[torch.as_tensor(picked), slices[name]] = values
        return out if device is None else out.to(device)

    def _gather_rows(self, mosaic, picked, ys, xs, size, slices, out):
        """Pixels of a few output rows of a band-by-band image: only the mosaic rows they read."""
        y, x = torch.as_tensor(ys), torch.as_tensor(xs)
        zeros = torch.zeros(len(ys), dtype=torch.long)
        for name in self.layer_names:
            h, w = mosaic.native_size(name)
            low, high, _ = source_coordinates(y, size[0], h)
            first, stop = int(low.min()), int(high.max()) + 1
            strip = mosaic.rows(name, first, stop)
            values = bilinear_gather(strip[None], zeros, y, x, size[0], size[1], (h, w), row_offset=first)
            out[torch.as_tensor(picked), slices[name]] = values

    def projected_bands(self, i, weight, bias=None, band_rows=None, device=None, rows=None):
        """See :meth:`PixelFeatures.projected_bands`; a band-by-band image computes the rows each band reads.

        ``rows=(start, stop)``: only the bands of these output rows (a band-by-band image only), so
        that rows far down a large image cost no tiles above them.
        """
        mosaic = self.per_image[i]
        if rows is not None and not isinstance(mosaic, TileMosaic):
            raise ValueError("rows= applies to images computed band by band (tiled_features(..., lazy=True)).")
        if not isinstance(mosaic, TileMosaic):
            # Held maps are projected a few native rows at a time too: projected whole (as
            # PixelFeatures does), the maps of a 2,000² image at scale 4 (500² model pixels) times
            # 10 members x 128 units took 1.2 GB at the finest native size; predicting it peaked at 5 GB.
            mosaic = _HeldMaps(mosaic)
        if weight.shape[-2] != self.n_features:
            raise ValueError(
                f"weight has {weight.shape[-2]} input features (shape {tuple(weight.shape)}), but these "
                f"features have n_features={self.n_features}."
            )
        device = weight.device if device is None else torch.device(device)
        weight = weight.to(device, torch.float32)
        bias = None if bias is None else bias.to(device, torch.float32)
        height, width = (int(v) for v in self.image_sizes[i])
        band_rows = height if band_rows is None else int(band_rows)
        return _projected_mosaic_bands(mosaic, self.layer_names, self.channel_slices(), weight, bias, (height, width),
                                       band_rows, device, rows)


class _HeldMaps:
    """An image's held ``{name: (h, w, C)}`` maps, read by rows as a :class:`TileMosaic` is."""

    def __init__(self, maps):
        self.maps = maps

    def native_size(self, name):
        return tuple(int(v) for v in self.maps[name].shape[:2])

    def rows(self, name, first, stop):
        return self.maps[name][first:stop]


def _projected_mosaic_bands(mosaic, names, slices, weight, bias, size, band_rows, device, rows=None):
    """Bands of ``projected_bands`` for a mosaic computed as it is read.

    Each native row of every layer is blended and projected once, when the first band reads it,
    and dropped when the bands have moved past it; maps of one native size are summed after
    projection, as :meth:`PixelFeatures.projected_bands` does.
    """
    height, width = size
    batch = weight.shape[:-2]
    groups = {}
    for name in names:
        columns_weight = weight[..., slices[name], :].movedim(-2, 0).reshape(slices[name].stop - slices[name].start, -1)
        groups.setdefault(mosaic.native_size(name), []).append((name, columns_weight))
    sizes = list(groups)
    k = next(iter(groups.values()))[0][1].shape[-1]
    upsampler = BandUpsampler([torch.empty((0, w, k), device=device) for _, w in sizes], size,
                              source_heights=[h for h, _ in sizes])
    projected = {s: (0, torch.empty((0, s[1], k), device=device)) for s in sizes}
    start, stop = (0, height) if rows is None else (int(rows[0]), int(rows[1]))
    for top in range(start, stop, band_rows):
        bottom = min(stop, top + band_rows)
        strips, offsets = [], []
        for s, (lo, hi) in zip(sizes, upsampler.source_rows(top, bottom)):
            first, rows = projected[s]
            if not first <= lo <= first + len(rows):
                first, rows = lo, rows[:0]
            rows, first = rows[lo - first :], lo
            if hi > first + len(rows):
                start = first + len(rows)
                new = None
                for name, columns_weight in groups[s]:
                    native = mosaic.rows(name, start, hi).to(device, torch.float32)
                    part = native.reshape(-1, native.shape[-1]) @ columns_weight
                    new = part if new is None else new + part
                rows = torch.cat([rows, new.reshape(hi - start, s[1], k)])
            projected[s] = (first, rows)
            strips.append(rows[: hi - first])
            offsets.append(first)
        upsampler.use_strips(strips, offsets)
        values = upsampler.band(top, bottom).reshape((bottom - top) * width, *batch, -1)
        yield top, bottom, values if bias is None else values.add_(bias)
