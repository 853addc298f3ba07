"""One large image on a Dask cluster: bands of rows as tasks, written into one OME-Zarr store.

With ``format="zarr"`` and a tiling segmenter (``DDPMFeatureTransformer(tile=...)``), an image
of more than ``pixels_per_task`` pixels is cut into bands of whole zarr chunk-rows. Each band is a
task: the worker (its model loaded once, as for image tasks) reads the image, runs only the tiles
the band's rows read, predicts those rows and writes them into the image's temporary store, which
the client created; the client renames the store when every band is written. A band's rows are the
numbers in-process prediction gives them:

- features: a tile mosaic gives the same numbers whichever rows are asked for
  (:meth:`~sklearn_ddpm.features._tiling.TileMosaic.rows`), so the band reads its rows from
  tiles computed on demand (:func:`~sklearn_ddpm.features._tiled.tiled_features` ``lazy=True``);
- ``refine`` (the guided filter): the band is predicted with ``refine.reach`` rows of context
  either side, which the filter needs to give the rows it gives on the whole image (as
  :meth:`MLPEnsembleClassifier.predict_bands` does with its own blocks);
- writes: a band starts on a chunk-row, so two tasks never write one chunk.

Float sums in another order (tile batches, filter blocks) make the probabilities differ at the
level of float rounding (tested: labels identical, probabilities within 1e-3 in float16).
"""

import os

import numpy as np

from .._outputs._zarr import PIXELS_PER_TASK  # noqa: F401  (the default of predict_folder and the CLI)
from ..features._tiled import TiledPixelFeatures


def splits_into_bands(pipeline):
    """Whether the segmenter's images can be predicted band by band on several workers.

    A tiling feature step (band-by-band features) followed by the classifier, whose ``refine``
    is None or has a bounded ``reach``.
    """
    from sklearn.pipeline import Pipeline

    from ..ensemble import MLPEnsembleClassifier
    from ..features import DDPMFeatureTransformer

    if not isinstance(pipeline, Pipeline) or len(pipeline) != 2:
        return False
    features, clf = pipeline[0], pipeline[-1]
    return (isinstance(features, DDPMFeatureTransformer) and features.tile is not None
            and features.output == "compact" and isinstance(clf, MLPEnsembleClassifier)
            and (clf.refine is None or getattr(clf.refine, "reach", None) is not None))


def plan_bands(size, chunk, pixels_per_task):
    """Row ranges ``[(top, bottom), ...]`` of the tasks of an image of ``size`` ``(height, width)``.

    Whole chunk-rows, as many per band as keep it within ``pixels_per_task`` (at least one); a
    single band when the image is not larger than ``pixels_per_task``.

    Examples
    --------
    >>> plan_bands((300, 500), chunk=64, pixels_per_task=1)
    [(0, 64), (64, 128), (128, 192), (192, 256), (256, 300)]
    >>> plan_bands((300, 500), chunk=64, pixels_per_task=10**6)
    [(0, 300)]
    """
    height, width = (int(v) for v in size)
    if height * width <= pixels_per_task:
        return [(0, height)]
    rows = max(1, pixels_per_task // (width * chunk)) * chunk
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


def image_size(path):
    """``(height, width)`` of an image file as :func:`~sklearn_ddpm.datasets.read_image` reads it,
    from its header (EXIF orientations 5-8 swap the sides); None if Pillow cannot tell."""
    from PIL import Image

    if not isinstance(path, (str, os.PathLike)):
        return None  # e.g. a plane of a stack: one image task
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable, or not a Pillow format: its image task records what is wrong
        return None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def predict_band(pipeline, image, top, bottom):
    """The outputs of rows ``top:bottom`` of ``image``, in bands, as in-process prediction gives them.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A fitted segmenter for which :func:`splits_into_bands` holds.
    image : ndarray of shape (height, width, ...)
        The whole image (any input ``pipeline[0]`` takes).
    top, bottom : int

    Yields
    ------
    top, bottom, outputs
        Consecutive bands from ``top`` to ``bottom`` (as :meth:`MLPEnsembleClassifier.predict_bands`).
    """
    from ..features._tiled import tiled_features
    from ..utils._validation import check_images

    transformer, clf = pipeline[0], pipeline[-1]
    images = check_images([image], channels=transformer.channels, intensity=transformer.intensity)
    features = tiled_features(transformer, images, lazy=True)
    if transformer.flip_tta:
        features.mirrored = tiled_features(transformer, [np.ascontiguousarray(images[0][:, ::-1])], lazy=True)
    height = int(features.image_sizes[0][0])
    reach = 0 if clf.refine is None else int(clf.refine.reach)
    lo, hi = max(0, top - reach), min(height, bottom + reach)
    for _, first, stop, outputs in clf.predict_bands(_RowWindow(features, lo, hi)):
        first, stop = first + lo, stop + lo
        if stop <= top or first >= bottom:
            continue  # context rows
        keep = slice(max(top, first) - first, min(bottom, stop) - first)
        yield max(top, first), min(bottom, stop), {key: value[keep] for key, value in outputs.items()}


class _RowWindow(TiledPixelFeatures):
    """Rows ``lo:hi`` of the one band-by-band image of ``whole``, seen as an image of ``hi - lo`` rows.

    Its bands are the whole image's (projected from the same mosaic rows, upsampled with the whole
    image's coordinates), so the classifier predicts exactly those rows; the guide of ``refine`` is
    the image's rows ``lo:hi``.
    """

    def __init__(self, whole, lo, hi):
        width = int(whole.image_sizes[0][1])
        images = None if whole.images is None else [whole.images[0][lo:hi]]
        mirrored = None if whole.mirrored is None else _RowWindow(whole.mirrored, lo, hi)
        super().__init__(whole.per_image, whole.layer_names, [(hi - lo, width)], whole._layer_channels(), whole.dtype,
                         images=images, mirrored=mirrored)
        self.whole, self.lo, self.hi = whole, int(lo), int(hi)

    def gather(self, image_index, ys, xs, device=None):
        return self.whole.gather(image_index, np.asarray(ys) + self.lo, xs, device)

    def projected_bands(self, i, weight, bias=None, band_rows=None, device=None):
        band_rows = self.hi - self.lo if band_rows is None else band_rows
        for top, bottom, values in self.whole.projected_bands(i, weight, bias, band_rows, device,
                                                              rows=(self.lo, self.hi)):
            yield top - self.lo, bottom - self.lo, values
