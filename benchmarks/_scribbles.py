"""Simulated scribbles: what an annotator's strokes would label, made from a full mask.

An annotator drawing scribbles paints a few strokes inside each region, away from its outline.
``region_strokes`` finds the candidate strokes of a mask: for each class, the class's pixels are
eroded (so a stroke of ``stroke_width`` stays inside the region), skeletonized
(``skimage.morphology.skeletonize``), cut along the skeleton into pieces of ``piece_length``
pixels (geodesic distance along the skeleton) and each piece is widened to ``stroke_width``
(never past the class's own pixels). Regions too thin to survive the erosion get the skeleton of
the uneroded region instead. ``simulate_scribbles`` then keeps a random subset of the pieces until a
target fraction of the image's pixels is labelled: first one piece of every class present (an
annotator labels each class at least once), then pieces in random order. The result is a label
map with ``ignore_index`` (255) on the unlabelled pixels, deterministic given ``random_state``.

The achieved fraction differs from the target: by about half a piece either way (or more when one
piece of every class already covers more), and below it when
all of the mask's strokes together cover less (a benchmark should record
``labelled_fraction(scribbles)``, not the target).
"""

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Stroke:
    """One piece of stroke: its class and the flat indices of the pixels it labels."""

    label: int
    pixels: np.ndarray


def _disk_offsets(radius):
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = yy**2 + xx**2 <= r * r + r  # the same disk as skimage.morphology.disk's for these sizes
    return yy[keep], xx[keep]


def _skeleton(region, erosion_radius):
    """Skeleton of ``region`` eroded by ``erosion_radius``; components the erosion removes keep the
    skeleton of their uneroded pixels."""
    from scipy.ndimage import binary_erosion
    from skimage.measure import label
    from skimage.morphology import disk, skeletonize

    eroded = binary_erosion(region, disk(erosion_radius)) if erosion_radius > 0 else region
    skeleton = skeletonize(eroded)
    components = label(region, connectivity=2)
    covered = np.unique(components[skeleton])
    missing = np.setdiff1d(np.arange(1, components.max() + 1), covered)
    if missing.size:
        skeleton |= skeletonize(np.isin(components, missing))
    return skeleton


def _pieces(skeleton, piece_length):
    """Cut the skeleton into pieces of about ``piece_length`` pixels along it.

    Each connected part of the skeleton is measured from its first pixel in raster order
    (Dijkstra over its 8-neighbour graph); a piece holds the pixels whose distance falls in one
    ``piece_length``-long interval.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    ys, xs = np.nonzero(skeleton)
    n = ys.size
    if n == 0:
        return []
    index = -np.ones(skeleton.shape, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    rows, cols, weights = [], [], []
    h, w = skeleton.shape
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        neighbour = np.full(n, -1)
        neighbour[ok] = index[ny[ok], nx[ok]]
        linked = neighbour >= 0
        rows.append(np.flatnonzero(linked))
        cols.append(neighbour[linked])
        weights.append(np.full(linked.sum(), np.hypot(dy, dx)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    n_parts, part = connected_components(graph, directed=False)
    roots = np.array([np.flatnonzero(part == p)[0] for p in range(n_parts)])
    distance = dijkstra(graph, directed=False, indices=roots, min_only=True)
    bins = np.floor(distance / piece_length).astype(np.int64)
    key = part * (int(bins.max()) + 1) + bins
    flat = ys * w + xs
    return [flat[key == k] for k in np.unique(key)]


def region_strokes(mask, *, stroke_width=3, piece_length=24, ignore_index=IGNORE_INDEX):
    """Candidate strokes of ``mask``: skeleton pieces of every class's regions, ``stroke_width`` wide.

    Parameters
    ----------
    mask : ndarray of shape (H, W)
        Integer labels; ``ignore_index`` pixels belong to no stroke.
    stroke_width : int, default=3
        Width of a stroke in pixels (odd widths are exact: a disk of radius ``stroke_width // 2``).
    piece_length : float, default=24
        Length of a piece along the skeleton, in pixels.
    ignore_index : int, default=255

    Returns
    -------
    list of Stroke
        In the order of the classes, then of the pieces (deterministic).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-d label map, got shape {mask.shape}.")
    if stroke_width < 1 or piece_length <= 0:
        raise ValueError(f"stroke_width must be >= 1 and piece_length > 0, got {stroke_width} and {piece_length}.")
    radius = stroke_width // 2
    oy, ox = _disk_offsets(radius)
    h, w = mask.shape
    strokes = []
    for label in np.unique(mask):
        if label == ignore_index:
            continue
        region = mask == label
        # Eroding by the stroke's radius plus one keeps the widened stroke a pixel off the outline.
        for piece in _pieces(_skeleton(region, radius + 1), piece_length):
            py, px = np.divmod(piece, w)
            yy, xx = (py[:, None] + oy).ravel(), (px[:, None] + ox).ravel()
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            flat = np.unique(yy[ok] * w + xx[ok])
            strokes.append(Stroke(int(label), flat[region.ravel()[flat]]))
    return strokes


def simulate_scribbles(mask, fraction, *, stroke_width=3, piece_length=24, ignore_index=IGNORE_INDEX,
                       random_state=None):
    """Scribbles labelling about ``fraction`` of the pixels of ``mask`` (the rest ``ignore_index``).

    Parameters
    ----------
    mask : ndarray of shape (H, W)
        The full mask the scribbles are drawn from.
    fraction : float in (0, 1] or None
        Target fraction of the image's pixels to label; None keeps every stroke.
    stroke_width, piece_length, ignore_index
        See :func:`region_strokes`.
    random_state : int, numpy Generator or None
        Seeds which pieces are kept.

    Returns
    -------
    ndarray of shape (H, W), uint8
        The true class along the kept strokes, ``ignore_index`` elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((64, 64), np.uint8); mask[16:48, 16:48] = 1
    >>> scribbles = simulate_scribbles(mask, 0.05, random_state=0)
    >>> sorted(np.unique(scribbles).tolist())
    [0, 1, 255]
    >>> bool((scribbles[scribbles != 255] == mask[scribbles != 255]).all())
    True
    """
    mask = np.asarray(mask)
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] or None, got {fraction}.")
    strokes = region_strokes(mask, stroke_width=stroke_width, piece_length=piece_length, ignore_index=ignore_index)
    out = np.full(mask.size, ignore_index, dtype=np.uint8)
    if fraction is None:
        for stroke in strokes:
            out[stroke.pixels] = stroke.label
        return out.reshape(mask.shape)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(strokes))
    labels = np.array([s.label for s in strokes])
    # One piece of every class first, then the others in the same random order.
    first = [order[labels[order] == c][0] for c in np.unique(labels)]
    rest = [k for k in order if k not in set(first)]
    target = fraction * mask.size
    labelled = 0
    for k in first + rest:
        pixels = strokes[k].pixels
        new = int((out[pixels] == ignore_index).sum())
        # Stop at the piece count closest to the target (one piece of every class at least).
        if k not in first and labelled + new / 2 > target:
            break
        labelled += new
        out[pixels] = strokes[k].label
    return out.reshape(mask.shape)


def labelled_fraction(labels, ignore_index=IGNORE_INDEX):
    """Fraction of the pixels of ``labels`` that are labelled (not ``ignore_index``)."""
    labels = np.asarray(labels)
    return float((labels != ignore_index).mean())


def strokes_in_region(mask, region, *, stroke_width=3, piece_length=24, ignore_index=IGNORE_INDEX):
    """What a simulated annotator labels when asked about ``region``: the true class along the
    strokes of every class inside it (the skeleton of each class's part of the region).

    Returns an (H, W) uint8 label map, ``ignore_index`` outside the strokes.
    """
    mask = np.asarray(mask)
    region = np.asarray(region, dtype=bool)
    if region.shape != mask.shape:
        raise ValueError(f"region has shape {region.shape}, the mask {mask.shape}.")
    inside = np.where(region, mask, ignore_index).astype(mask.dtype)
    return simulate_scribbles(inside, None, stroke_width=stroke_width, piece_length=piece_length,
                              ignore_index=ignore_index)
