"""Where to label next: connected regions where the ensemble's members disagree most."""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


@dataclass(frozen=True, eq=False)
class Suggestion:
    """A region a user should label next.

    Attributes
    ----------
    image : int
        Index of the image in the session.
    bbox : tuple of int
        ``(y0, x0, y1, x1)``: the region's bounding box, end exclusive (``image[y0:y1, x0:x1]``).
    mask : ndarray of shape (H, W), bool
        The region's pixels, at the image's size.
    score : float
        How much the region is worth labelling: the summed (or mean, see
        :meth:`InteractiveSegmenter.suggest`) Jensen-Shannon divergence of its pixels, in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.interactive import Suggestion
    >>> mask = np.zeros((4, 4), bool); mask[1:3, 2] = True
    >>> Suggestion(image=0, bbox=(1, 2, 3, 3), mask=mask, score=0.4).bbox
    (1, 2, 3, 3)
    """

    image: int
    bbox: tuple
    mask: np.ndarray = field(repr=False)
    score: float

    @property
    def n_pixels(self):
        """Pixels in the region."""
        return int(self.mask.sum())

    @property
    def center(self):
        """``(y, x)`` of a pixel of the region near its centre of mass (inside the region)."""
        ys, xs = np.nonzero(self.mask)
        k = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
        return int(ys[k]), int(xs[k])


def uncertain_regions(uncertainty, threshold, *, min_pixels=1, score="sum", exclude=None):
    """Connected regions of ``uncertainty >= threshold``, with their scores.

    Parameters
    ----------
    uncertainty : ndarray of shape (H, W)
        Per-pixel uncertainty (the members' Jensen-Shannon divergence).
    threshold : float
        Pixels at or above it form the regions (8-connected).
    min_pixels : int, default=1
        Smaller regions are left out.
    score : {"sum", "mean"}, default="sum"
        A region's score: the sum of its pixels' uncertainty (large disagreeing regions first)
        or their mean (the most disagreeing first, whatever their size).
    exclude : ndarray of shape (H, W), bool, default=None
        Pixels never part of a region (e.g. those already labelled).

    Returns
    -------
    list of (bbox, mask, score)
        Unsorted; ``bbox`` as in :class:`Suggestion`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.interactive._suggest import uncertain_regions
    >>> u = np.zeros((6, 6)); u[0:2, 0:2] = 0.5; u[4:6, 3:6] = 0.2
    >>> sorted(round(s, 2) for _, _, s in uncertain_regions(u, 0.1))
    [1.2, 2.0]
    """
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    candidates = uncertainty >= threshold
    if exclude is not None:
        candidates &= ~np.asarray(exclude, bool)
    labelled, n = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(uncertainty), labelled, index)
    totals = ndimage.sum_labels(uncertainty, labelled, index)
    scores = totals if score == "sum" else totals / np.maximum(sizes, 1)
    regions = []
    for label, box, size, value in zip(index, ndimage.find_objects(labelled), sizes, scores):
        if size < min_pixels:
            continue
        bbox = (box[0].start, box[1].start, box[0].stop, box[1].stop)
        mask = np.zeros(labelled.shape, bool)
        mask[box] = labelled[box] == label  # within the box only: many small regions stay cheap
        regions.append((tuple(int(v) for v in bbox), mask, float(value)))
    return regions
