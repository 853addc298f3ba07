"""Uniform pixel access for the classifier: compact features, dense images or a plain matrix."""

import numpy as np
import torch

from ..features import PixelFeatures


class PixelTable:
    """Feature vectors addressed by (image, row, column).

    A plain ``(n_samples, n_features)`` matrix is one image of ``n_samples`` rows and one column,
    so tabular and image inputs share the classifier's code.
    """

    def __init__(self, source, sizes, kind):
        self.source = source
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.kind = kind
        if isinstance(source, PixelFeatures):
            self.n_features = source.n_features
        else:
            self.n_features = int(source.shape[-1])
            self._offsets = np.concatenate([[0], np.cumsum(self.sizes[:, 0] * self.sizes[:, 1])])

    @classmethod
    def from_input(cls, X):
        """Wrap ``X``; tabular input is left for the caller to validate (returns None)."""
        if isinstance(X, PixelFeatures):
            return cls(X, X.image_sizes, "images")
        if isinstance(X, np.ndarray) and X.ndim == 4:
            return cls(_finite(X.reshape(-1, X.shape[-1])), [X.shape[1:3]] * len(X), "images")
        if isinstance(X, (list, tuple)) and X and all(isinstance(x, np.ndarray) and x.ndim == 3 for x in X):
            widths = {x.shape[-1] for x in X}
            if len(widths) != 1:
                raise ValueError(f"dense feature images have different feature counts {sorted(widths)}.")
            flat = np.concatenate([x.reshape(-1, x.shape[-1]) for x in X])
            return cls(_finite(flat), [x.shape[:2] for x in X], "images")
        return None

    @classmethod
    def from_matrix(cls, X):
        return cls(X, [(len(X), 1)], "tabular")

    def __len__(self):
        return len(self.sizes)

    def gather(self, image_index, ys, xs):
        """float32 tensor ``(n, n_features)`` of the given pixels."""
        if isinstance(self.source, PixelFeatures):
            return self.source.gather(image_index, ys, xs)
        image_index, ys, xs = (np.asarray(a, dtype=np.int64) for a in (image_index, ys, xs))
        rows = self._offsets[image_index] + ys * self.sizes[image_index, 1] + xs
        return torch.from_numpy(np.asarray(self.source[rows], dtype=np.float32))

    def image_pixels(self, i):
        """Row and column of every pixel of image ``i``, in raster order."""
        height, width = self.sizes[i]
        ys, xs = np.divmod(np.arange(height * width, dtype=np.int64), width)
        return ys, xs


def _finite(array):
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError("the features contain NaN or infinite values.")
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"features must be numeric, got dtype {array.dtype}.")
    return array


#: ``min_class_pixels="auto"``: the reference's threshold applies to an image whose labelled
#: pixels are at least this fraction of it (a dense mask, where specks are labelling noise) ...
DENSE_LABELLED_FRACTION = 0.5
#: ... and this is the reference's threshold; sparser masks (scribbles, strokes, clicks) keep every
#: labelled pixel, since each of their classes covers only a few pixels by design.
DENSE_MIN_CLASS_PIXELS = 20


def min_class_pixels_of(mask, min_class_pixels, ignore_index=255):
    """The ``min_class_pixels`` threshold that applies to one mask ("auto" resolved).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.ensemble._pixels import min_class_pixels_of
    >>> dense, sparse = np.zeros((10, 10), np.uint8), np.full((10, 10), 255, np.uint8)
    >>> sparse[5, :] = 1
    >>> min_class_pixels_of(dense, "auto"), min_class_pixels_of(sparse, "auto"), min_class_pixels_of(sparse, 20)
    (20, 0, 20)
    """
    if not (isinstance(min_class_pixels, str) and min_class_pixels == "auto"):
        return int(min_class_pixels)
    labelled = np.count_nonzero(np.asarray(mask) != ignore_index)
    return DENSE_MIN_CLASS_PIXELS if labelled >= DENSE_LABELLED_FRACTION * np.size(mask) else 0


def select_training_pixels(
    masks, ignore_index=255, min_class_pixels=20, max_pixels_per_image=None, max_pixels_per_class=None, rng=None
):
    """Pick the labelled pixels to train on.

    Drops ``ignore_index``; like the reference, a class covering fewer than
    ``min_class_pixels`` pixels of an image is ignored in that image (tiny annotation specks are
    mostly labelling noise). ``min_class_pixels="auto"`` applies the reference's 20 to images with
    at least half of their pixels labelled and keeps every labelled pixel of sparser ones
    (:func:`min_class_pixels_of`). Optional caps subsample per image and per class within an image.

    Returns
    -------
    image_index, ys, xs, labels : ndarrays of shape (n_pixels,)
    dropped : dict
        ``{label: (n_pixels, n_images)}`` for the labelled pixels ``min_class_pixels`` dropped.
    """
    rng = np.random.default_rng(rng)
    out = {"image": [], "ys": [], "xs": [], "labels": []}
    dropped = {}
    for i, mask in enumerate(masks):
        flat = mask.ravel()
        keep = flat != ignore_index
        classes, counts = np.unique(flat[keep], return_counts=True)
        threshold = min_class_pixels_of(flat, min_class_pixels, ignore_index)
        picked = []
        for c, count in zip(classes, counts):
            if count < threshold:
                pixels, images = dropped.get(c.item(), (0, 0))
                dropped[c.item()] = (pixels + int(count), images + 1)
                continue
            positions = np.flatnonzero(flat == c)
            if max_pixels_per_class is not None and len(positions) > max_pixels_per_class:
                positions = rng.choice(positions, max_pixels_per_class, replace=False)
            picked.append(positions)
        positions = np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)
        if max_pixels_per_image is not None and len(positions) > max_pixels_per_image:
            positions = np.sort(rng.choice(positions, max_pixels_per_image, replace=False))
        ys, xs = np.divmod(positions, mask.shape[1])
        out["image"].append(np.full(len(positions), i, np.int64))
        out["ys"].append(ys)
        out["xs"].append(xs)
        out["labels"].append(flat[positions])
    return (*(np.concatenate(out[k]) for k in ("image", "ys", "xs", "labels")), dict(sorted(dropped.items())))
