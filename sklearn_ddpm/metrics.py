"""Segmentation metrics: mean intersection-over-union accumulated over a whole set of images."""

import numpy as np
from sklearn.metrics import make_scorer


def confusion_matrix_images(y_true, y_pred, ignore_index=255, n_classes=None):
    """Pixel confusion matrix summed over images; pixels labelled ``ignore_index`` are skipped.

    Parameters
    ----------
    y_true, y_pred : array or list of arrays
        Label maps of matching shapes: ``(N, H, W)`` arrays, lists of ``(H, W)`` arrays (sizes may
        differ between images) or flat label vectors.
    ignore_index : int or None, default=255
        Ground-truth value that is not scored.
    n_classes : int, default=None
        Size of the matrix; by default one more than the largest label seen.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)
        Rows are true classes, columns predicted ones.
    """
    true_items, pred_items = _pairs(y_true, y_pred)
    flat_true, flat_pred = [], []
    for i, (t, p) in enumerate(zip(true_items, pred_items)):
        t, p = np.asarray(t), np.asarray(p)
        if t.shape != p.shape:
            raise ValueError(f"image {i}: y_true has shape {t.shape} but y_pred has shape {p.shape}.")
        keep = t != ignore_index if ignore_index is not None else np.ones(t.shape, bool)
        flat_true.append(t[keep].astype(np.int64).ravel())
        flat_pred.append(p[keep].astype(np.int64).ravel())
    t = np.concatenate(flat_true) if flat_true else np.empty(0, np.int64)
    p = np.concatenate(flat_pred) if flat_pred else np.empty(0, np.int64)
    if (t < 0).any() or (p < 0).any():
        raise ValueError("labels must be non-negative integers.")
    if ignore_index is not None and (p == ignore_index).any():
        raise ValueError(f"y_pred contains the ignore value {ignore_index}.")
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if n_classes is None:
        n_classes = seen
    elif seen > n_classes:
        raise ValueError(f"labels go up to {seen - 1} but n_classes={n_classes}.")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_iou(y_true, y_pred, ignore_index=255, n_classes=None):
    """Intersection over union of every class, accumulated over all images.

    Classes absent from both truth and prediction get NaN (no evidence either way).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.metrics import per_class_iou
    >>> per_class_iou(np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]]))
    array([0.5       , 0.66666667])
    """
    return iou_from_confusion(confusion_matrix_images(y_true, y_pred, ignore_index, n_classes))


def iou_from_confusion(cm):
    """Per-class IoU of a confusion matrix (rows true, columns predicted); NaN for absent classes."""
    intersection = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def miou_score(y_true, y_pred, ignore_index=255, n_classes=None, average=True):
    """Mean IoU over the classes present in the truth or the prediction.

    Per-class intersections and unions are summed over all images before dividing, as the
    reference implementation does; pixels whose truth is ``ignore_index`` are not scored.

    Parameters
    ----------
    y_true, y_pred : array or list of arrays
        Label maps (see :func:`confusion_matrix_images`).
    ignore_index : int or None, default=255
    n_classes : int, default=None
    average : bool, default=True
        False returns the per-class IoU array instead (as :func:`per_class_iou`).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm import miou_score
    >>> round(miou_score(np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]])), 4)
    0.5833
    """
    ious = per_class_iou(y_true, y_pred, ignore_index, n_classes)
    if not average:
        return ious
    return mean_iou(ious)


def mean_iou(ious, exclude=()):
    """Mean IoU of the present classes: the mean of the per-class IoUs that are not NaN.

    Parameters
    ----------
    ious : array-like of shape (n_classes,)
        Per-class IoU, NaN for a class absent from truth and prediction (:func:`per_class_iou`).
    exclude : iterable of int, default=()
        Classes left out of the mean (e.g. an ignore label that is also a class index); indices
        beyond ``ious`` are allowed and have no effect.

    Returns
    -------
    float
        0.0 when no class is present (nothing was scored).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.metrics import mean_iou
    >>> mean_iou(np.array([0.5, np.nan, 1.0]))
    0.75
    """
    ious = np.array(ious, dtype=float)
    excluded = [k for k in exclude if 0 <= k < len(ious)]
    ious[excluded] = np.nan
    present = ious[~np.isnan(ious)]
    return float(present.mean()) if present.size else 0.0


def _pairs(y_true, y_pred):
    def items(y):
        if isinstance(y, np.ndarray) and y.ndim >= 3:
            return list(y)
        if isinstance(y, np.ndarray):
            return [y]
        return list(y)

    true_items, pred_items = items(y_true), items(y_pred)
    if len(true_items) != len(pred_items):
        raise ValueError(f"y_true has {len(true_items)} images but y_pred has {len(pred_items)}.")
    return true_items, pred_items


miou_scorer = make_scorer(miou_score)
"""A scorer for ``GridSearchCV(scoring=miou_scorer)``; estimators' ``score`` already uses mIoU."""
