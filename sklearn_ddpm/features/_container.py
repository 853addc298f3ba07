"""``PixelFeatures``: the compact output of :class:`DDPMFeatureTransformer`."""

import numpy as np
import torch

from ._sampling import BandUpsampler, bilinear_gather


class PixelFeatures:
    """Per-pixel diffusion features, stored compactly at each block's native resolution.

    The transformer's default output. Where the reference implementation upsamples every block to
    the image size and concatenates (ADM-256, paper defaults: 8448 float32 values per pixel,
    2.2 GB per image), this container keeps each (step, block) activation at the resolution the
    UNet produced it (about 50 MB per image in float16) and computes any pixel's feature vector on
    request by exact bilinear interpolation, as ``scipy.sparse`` output stands in for a dense
    one-hot matrix. ``np.asarray(features)`` densifies when all images have the same size.

    Pixel ``(y, x)`` of image ``i`` refers to the image's *output* grid ``image_sizes[i]`` (by
    default its original size), so masks are used at the size they were drawn.

    This container is the one place that upsamples: :meth:`gather` samples any pixels,
    :meth:`projected_bands` gives a linear map of whole rows (the first layer of a pixel classifier)
    without upsampling the features; both follow
    ``F.interpolate(mode="bilinear", align_corners=False)``.

    Parameters
    ----------
    maps : list of torch.Tensor of shape (n_images, h, w, C)
        One channels-last tensor per (step, block), in feature order.
    layer_names : list of (int, int)
        ``(timestep, block)`` of each map.
    image_sizes : array-like of shape (n_images, 2)
        Output ``(height, width)`` of every image.
    images : list of ndarray of shape (height, width, 3), default=None
        The images themselves, uint8 at their output size, for post-processing guided by the
        image (``MLPEnsembleClassifier(refine=...)``). The transformer always attaches them.
    mirrored : PixelFeatures, default=None
        Features of the horizontally flipped images (``DDPMFeatureTransformer(flip_tta=True)``),
        each in its own raster order; the classifier averages its predictions on both.

    Attributes
    ----------
    n_features : int
        Length of a pixel's feature vector (sum of the maps' channels).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_ddpm.features import PixelFeatures
    >>> maps = [torch.arange(8, dtype=torch.float16).reshape(1, 2, 2, 2)]
    >>> features = PixelFeatures(maps, [(50, 0)], [(4, 4)])
    >>> np.asarray(features).shape
    (1, 4, 4, 2)
    """

    def __init__(self, maps, layer_names, image_sizes, images=None, mirrored=None):
        self.maps = [m.contiguous() for m in maps]
        self.images = None if images is None else list(images)
        self.mirrored = mirrored
        self.layer_names = [tuple(int(v) for v in name) for name in layer_names]
        self.image_sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
        n_images = len(self.image_sizes)
        for m in self.maps:
            if m.ndim != 4 or m.shape[0] != n_images:
                raise ValueError(f"each map must have shape (n_images={n_images}, h, w, C), got {tuple(m.shape)}.")
        self.n_features = int(sum(m.shape[-1] for m in self.maps))

    def __len__(self):
        return len(self.image_sizes)

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_images={len(self)}, n_features={self.n_features}, "
            f"layers={len(self.layer_names)}, nbytes={self.nbytes / 2**20:.1f} MiB)"
        )

    @property
    def nbytes(self):
        """Bytes held by the activation maps."""
        return int(sum(m.numel() * m.element_size() for m in self.maps))

    @property
    def dtype(self):
        return self.maps[0].dtype if self.maps else torch.float32

    @property
    def shape(self):
        """``(n_images, height, width, n_features)``; height and width are None for mixed sizes."""
        sizes = {tuple(s) for s in self.image_sizes}
        height, width = (int(v) for v in sizes.pop()) if len(sizes) == 1 else (None, None)
        return (len(self), height, width, self.n_features)

    def channel_slices(self):
        """Map each ``(timestep, block)`` to its columns in a pixel's feature vector."""
        slices, start = {}, 0
        for name, channels in zip(self.layer_names, self._layer_channels()):
            slices[name] = slice(start, start + channels)
            start += channels
        return slices

    def _layer_channels(self):
        return [int(m.shape[-1]) for m in self.maps]

    def _native_maps(self, i):
        """Image ``i``'s ``(h, w, C)`` map of every layer, in feature order."""
        return [m[i] for m in self.maps]

    def _layer_positions(self, layers):
        """Positions of ``layers`` (``(timestep, block)`` pairs) in ``layer_names``; KeyError for unknown ones."""
        index = {name: i for i, name in enumerate(self.layer_names)}
        missing = [name for name in layers if tuple(name) not in index]
        if missing:
            raise KeyError(f"layers {missing} are not in these features ({self.layer_names}).")
        return [index[tuple(name)] for name in layers]

    def select(self, layers):
        """A view with only the given ``(timestep, block)`` layers, in the given order."""
        picked = self._layer_positions(layers)
        return PixelFeatures([self.maps[i] for i in picked], [self.layer_names[i] for i in picked], self.image_sizes,
                             self.images, None if self.mirrored is None else self.mirrored.select(layers))

    def __getitem__(self, index):
        """Subset of images (int, slice or index array)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        rows = np.arange(len(self))[index]
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        return PixelFeatures([m[rows_t] for m in self.maps], self.layer_names, self.image_sizes[rows],
                             None if self.images is None else [self.images[r] for r in rows],
                             None if self.mirrored is None else self.mirrored[rows])

    def gather(self, image_index, ys, xs, device=None):
        """Feature vectors of the given pixels, float32, shape ``(n, n_features)``.

        Parameters
        ----------
        image_index, ys, xs : array-like of int, shape (n,)
            Image number and output-grid pixel of each sample.
        device : str or torch.device, default=None
            Where the result lives (the maps are moved there on first use).
        """
        image_index = torch.as_tensor(np.asarray(image_index), dtype=torch.long)
        ys = torch.as_tensor(np.asarray(ys), dtype=torch.long)
        xs = torch.as_tensor(np.asarray(xs), dtype=torch.long)
        sizes = torch.as_tensor(self.image_sizes)[image_index]
        out = torch.empty((len(image_index), self.n_features), dtype=torch.float32)
        start = 0
        for m in self.maps:
            stop = start + m.shape[-1]
            bilinear_gather(m, image_index, ys, xs, sizes[:, 0], sizes[:, 1], m.shape[1:3], out=out[:, start:stop])
            start = stop
        return out if device is None else out.to(device)

    def projected_bands(self, i, weight, bias=None, band_rows=None, device=None):
        """Image ``i``'s upsampled features times ``weight`` (plus ``bias``), a band of rows at a time.

        Bilinear upsampling and a linear map commute (the interpolation weights sum to one), so
        each map is projected at its native resolution and the ``k``-wide result is upsampled:
        the numbers of ``gather(...) @ weight + bias`` (to float rounding), at a fraction of the
        cost when many output pixels share few native ones, as the first layer of a pixel
        classifier does at prediction. Maps of equal resolution are summed before upsampling.

        Parameters
        ----------
        i : int
            The image.
        weight : torch.Tensor of shape (..., n_features, k)
            Leading dimensions are batch dimensions (e.g. one weight matrix per ensemble member).
        bias : torch.Tensor of shape (..., k), default=None
        band_rows : int, default=None
            Output rows per band; None gives the whole image in one band.
        device : str or torch.device, default=None
            Where to compute; by default ``weight``'s device.

        Returns
        -------
        iterator of (top, bottom, values)
            ``top, bottom``: the band's output rows; ``values``: float32 tensor of shape
            ``((bottom - top) * width, ..., k)``, the band's pixels in raster order. The maps are
            projected when this is called; each band is upsampled when it is reached.
        """
        if weight.shape[-2] != self.n_features:
            raise ValueError(
                f"weight has {weight.shape[-2]} input features (shape {tuple(weight.shape)}), but these "
                f"features have n_features={self.n_features}."
            )
        device = weight.device if device is None else torch.device(device)
        weight = weight.to(device, torch.float32)
        by_size = {}
        for columns, native in zip(self.channel_slices().values(), self._native_maps(i)):
            native = native.to(device, torch.float32)  # (h, w, C)
            # (C, batch * k): one matmul projects every batch member
            columns_weight = weight[..., columns, :].movedim(-2, 0).reshape(native.shape[-1], -1)
            projection = native @ columns_weight
            size = tuple(native.shape[:2])
            by_size[size] = projection if size not in by_size else by_size[size] + projection
        height, width = (int(v) for v in self.image_sizes[i])
        band_rows = height if band_rows is None else int(band_rows)
        bias = None if bias is None else bias.to(device, torch.float32)
        upsampler = BandUpsampler(list(by_size.values()), (height, width))
        batch = weight.shape[:-2]

        def values(top, bottom):
            band = upsampler.band(top, bottom).reshape((bottom - top) * width, *batch, -1)
            return band if bias is None else band.add_(bias)

        # a generator expression, so that the checks and projections above run on the call
        return (
            (top, bottom, values(top, bottom))
            for top in range(0, height, band_rows)
            for bottom in [min(height, top + band_rows)]
        )

    def dense_image(self, i):
        """The upsampled ``(height, width, n_features)`` float32 array of image ``i``."""
        height, width = (int(v) for v in self.image_sizes[i])
        ys, xs = np.divmod(np.arange(height * width), width)
        return self.gather(np.full(height * width, i), ys, xs).reshape(height, width, -1).numpy()

    def to_dense(self):
        """All images upsampled: an ``(n, H, W, D)`` array, or a list when sizes differ."""
        dense = [self.dense_image(i) for i in range(len(self))]
        if len({d.shape for d in dense}) == 1:
            return np.stack(dense) if dense else np.empty((0, 0, 0, self.n_features), np.float32)
        return dense

    def __array__(self, dtype=None, copy=None):
        dense = self.to_dense()
        if isinstance(dense, list):
            raise ValueError(
                "images have different sizes, so the features cannot form one array; use "
                "features.to_dense() for a list of per-image arrays."
            )
        return dense if dtype is None else dense.astype(dtype)

