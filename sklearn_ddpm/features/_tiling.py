"""Tiles: a large image read as overlapping backbone-sized tiles at a chosen scale, blended at seams.

The image is resized to a *model grid* of ``scale`` image pixels per model pixel; the grid is cut
into ``tile × tile`` tiles that overlap by at least ``overlap`` model pixels; the UNet runs on every
tile; each block's activations are blended into one map of the whole grid at the block's native
resolution (a *mosaic*), with weights that ramp linearly across every overlap, so neighbouring
tiles hand over smoothly and a tile's edge pixels, whose activations saw zero padding, weigh
least. The mosaics are what :class:`PixelFeatures` upsamples to the image's size, exactly as the
maps of a whole resized image.

Tile offsets are multiples of the UNet's ``size_multiple``, so a tile's block activations fall on
whole native pixels of every block's mosaic. A grid that is one tile is the image resized to the
tile, whose features are those of the untiled transformer (every weight is 1).
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one image lie.

    Attributes
    ----------
    image_size : (int, int)
        The image's ``(height, width)``.
    grid_size : (int, int)
        The model grid's ``(height, width)`` in model pixels (multiples of the UNet's size multiple).
    tile : int
        Tile side in model pixels (the UNet's input).
    offsets : (tuple of int, tuple of int)
        First model row of every tile row, first model column of every tile column.
    """

    image_size: tuple
    grid_size: tuple
    tile: int
    offsets: tuple

    @property
    def n_tiles(self):
        return len(self.offsets[0]) * len(self.offsets[1])

    def model_image(self, image):
        """The image resized to the model grid (Pillow's antialiased bilinear, as untiled input)."""
        height, width = self.grid_size
        if image.shape[:2] == (height, width):
            return np.asarray(image)
        return np.asarray(Image.fromarray(np.asarray(image)).resize((width, height), Image.BILINEAR))

    def tiles(self, model_image, row):
        """The uint8 tiles of tile row ``row``, left to right: ``(n_columns, tile, tile, 3)``."""
        top = self.offsets[0][row]
        band = model_image[top : top + self.tile]
        return np.stack([band[:, left : left + self.tile] for left in self.offsets[1]])

    def tile_offsets(self, row):
        """``(row, column)`` in the model grid of the tiles of tile row ``row``."""
        return [(self.offsets[0][row], left) for left in self.offsets[1]]

    def blend_weights(self, factor):
        """Per-tile blending weights along each axis for a map ``factor`` times coarser than the grid.

        Returns ``(rows, columns)``: for every tile row (column), a float32 tensor of its
        ``tile // factor`` native pixels. Linear ramps cover each overlap; at every native pixel
        the weights of the tiles covering it sum to one (so a 2-D weight, their outer product,
        does too).
        """
        return tuple(_axis_weights(offsets, self.tile, extent // factor, factor)
                     for offsets, extent in zip(self.offsets, self.grid_size))


def tile_grid(image_size, tile, overlap, scale, multiple):
    """The :class:`TileGrid` of an image.

    Parameters
    ----------
    image_size : (int, int)
        ``(height, width)`` of the image.
    tile : int
        Tile side in model pixels, a multiple of ``multiple``.
    overlap : int
        Least number of model pixels neighbouring tiles share; the step between tiles is
        ``tile - overlap`` rounded down to a multiple of ``multiple``, and the last tile of a row or
        column ends at the grid's edge (so it may overlap more).
    scale : float
        Image pixels per model pixel: the model grid is ``image_size / scale``, rounded to a
        multiple of ``multiple``, and at least one tile.
    multiple : int
        The UNet's size multiple.

    Examples
    --------
    >>> from sklearn_ddpm.features._tiling import tile_grid
    >>> grid = tile_grid((340, 512), tile=64, overlap=16, scale=4.0, multiple=8)
    >>> grid.grid_size, grid.offsets
    ((88, 128), ((0, 24), (0, 48, 64)))
    """
    step = max(multiple, (tile - overlap) // multiple * multiple)
    sizes, offsets = [], []
    for extent in image_size:
        size = max(tile, multiple * int(round(extent / scale / multiple)))
        starts = list(range(0, size - tile, step)) + [size - tile]
        sizes.append(size)
        offsets.append(tuple(starts))
    return TileGrid(tuple(int(s) for s in image_size), tuple(sizes), int(tile), tuple(offsets))


def _axis_weights(offsets, tile, native_extent, factor):
    native_tile = tile // factor
    raw = []
    for k, start in enumerate(offsets):
        weight = torch.ones(native_tile)
        position = torch.arange(native_tile, dtype=torch.float32) + 0.5
        if k > 0:  # ramp up across the overlap with the previous tile
            shared = (offsets[k - 1] + tile - start) // factor
            if shared > 0:
                weight = torch.minimum(weight, position / shared)
        if k + 1 < len(offsets):  # ramp down across the overlap with the next tile
            shared = (start + tile - offsets[k + 1]) // factor
            if shared > 0:
                weight = torch.minimum(weight, position.flip(0) / shared)
        raw.append(weight)
    total = torch.zeros(native_extent)
    for start, weight in zip(offsets, raw):
        total[start // factor : start // factor + native_tile] += weight
    return [weight / total[start // factor : start // factor + native_tile] for start, weight in zip(offsets, raw)]


class TileMosaic:
    """Blended native-resolution maps of one image's tiles, a range of rows at a time.

    Parameters
    ----------
    grid : TileGrid
    layers : list of (name, factor, channels)
        Each map: its ``(timestep, block)``, how many model pixels one native pixel spans, and its
        channels.
    tile_row_maps : callable
        ``tile_row_maps(row)`` → ``{name: tensor (n_columns, tile // factor, tile // factor, C)}``,
        the activations of the tiles of tile row ``row``.
    dtype : torch.dtype
        Storage type of the blended maps (the features' ``feature_dtype``).
    """

    def __init__(self, grid, layers, tile_row_maps, dtype):
        self.grid = grid
        self.layers = {name: (int(factor), int(channels)) for name, factor, channels in layers}
        self.tile_row_maps = tile_row_maps
        self.dtype = dtype
        self._weights = {factor: grid.blend_weights(factor) for factor, _ in self.layers.values()}

    def native_size(self, name):
        factor = self.layers[name][0]
        return self.grid.grid_size[0] // factor, self.grid.grid_size[1] // factor

    def rows(self, name, first, stop):
        """Rows ``first:stop`` of the mosaic of layer ``name``: ``(stop - first, w, C)`` of ``dtype``.

        Tiles are added in raster order, each times its outer-product weight, in float32, then the
        sum is stored as ``dtype``: the same numbers whichever range of rows is asked for.
        """
        factor, channels = self.layers[name]
        native_tile = self.grid.tile // factor
        row_weights, column_weights = self._weights[factor]
        width = self.grid.grid_size[1] // factor
        out = torch.zeros((stop - first, width, channels))
        for row, top in enumerate(self.grid.offsets[0]):
            top //= factor
            lo, hi = max(first, top), min(stop, top + native_tile)
            if lo >= hi:
                continue
            maps = self.tile_row_maps(row)[name]
            weight_y = row_weights[row][lo - top : hi - top, None, None]
            for column, left in enumerate(self.grid.offsets[1]):
                left //= factor
                weight = weight_y * column_weights[column][None, :, None]
                out[lo - first : hi - first, left : left + native_tile] += weight * maps[column, lo - top : hi - top].float()
        return out.to(self.dtype)

    def rows_needed(self, name, first, stop):
        """Tile rows whose tiles cover native rows ``first:stop`` of layer ``name``."""
        factor = self.layers[name][0]
        native_tile = self.grid.tile // factor
        return [row for row, top in enumerate(self.grid.offsets[0])
                if top // factor < stop and top // factor + native_tile > first]

    def whole(self, name):
        """The whole mosaic of layer ``name``."""
        return self.rows(name, 0, self.native_size(name)[0])


class LazyTiles:
    """The tile rows of one image, run through the UNet when first read; a few are kept.

    The memory of a large image's features is then that of the tile rows a band of output rows
    reads (two or three), not that of the image: a 10,000² image at one model pixel per image
    pixel has 208 × 208 tiles of 64².

    Parameters
    ----------
    transformer : DDPMFeatureTransformer
        Fitted; runs the tiles (its cache, batching, device and noise apply).
    image : ndarray of shape (height, width, 3), uint8
    grid : TileGrid
    keep : int, default=3
        Tile rows kept; older rows are dropped (prediction reads rows top to bottom).
    """

    def __init__(self, transformer, image, grid, keep=3):
        self.transformer = transformer
        self.image = image
        self.grid = grid
        self.keep = int(keep)
        self._rows = OrderedDict()
        self._model_image = None
        self._bar = None

    def __getstate__(self):
        # computed tile rows and the progress bar are a cache, not state
        return {**self.__dict__, "_rows": OrderedDict(), "_model_image": None, "_bar": None}

    def __call__(self, row):
        if row not in self._rows:
            if self._model_image is None:
                self._model_image = self.grid.model_image(self.image)
            if self._bar is None:
                self._bar = self.transformer._progress_bar(self.grid.n_tiles, "DDPM features (tiles)", "tile·step")
            units = self.grid.tiles(self._model_image, row)
            self._rows[row] = self.transformer._unit_maps(units, self._bar, self.grid.tile_offsets(row))
            while len(self._rows) > self.keep:
                self._rows.popitem(last=False)  # the least recently read
            if row == len(self.grid.offsets[0]) - 1:
                self._bar.close()
                self._bar = None
        self._rows.move_to_end(row)
        return self._rows[row]
