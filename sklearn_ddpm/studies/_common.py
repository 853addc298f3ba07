"""Pieces shared by the studies: feature extraction, the default classifier, scoring."""

import numpy as np
from sklearn.base import clone

from ..ensemble import MLPEnsembleClassifier
from ..features import DDPMFeatureTransformer
from ..metrics import mean_iou, per_class_iou


def study_classifier(classifier, random_state, n_classes=None):
    """A fresh copy of ``classifier`` seeded with ``random_state``.

    The default is deliberately smaller than the paper's 10-member ensemble trained on every
    labelled pixel, so a study of dozens of fits stays within minutes on a CPU; pass
    ``MLPEnsembleClassifier()`` for the paper's setting.
    """
    if classifier is None:
        classifier = MLPEnsembleClassifier(n_estimators=2, max_epochs=4, max_pixels_per_image=2000,
                                           max_pixels_per_class=None, batch_size=256, n_classes=n_classes)
    return clone(classifier).set_params(random_state=random_state)


def make_transformer(model, blocks, steps, transformer_params, random_state=0):
    """A fitted :class:`DDPMFeatureTransformer` with the study's blocks and steps."""
    params = dict(transformer_params or {})
    params.setdefault("random_state", random_state)
    return DDPMFeatureTransformer(model, blocks=blocks, steps=tuple(steps), **params).fit()


def evaluate(classifier, train_features, y_train, test_features, y_test, n_classes=None):
    """Fit ``classifier``, predict the test images; return ``(mIoU, per-class IoU)``.

    Per-class IoU is accumulated over all test images (NaN for classes absent from truth and
    prediction); mIoU is its NaN-mean, as :func:`sklearn_ddpm.miou_score`.
    """
    classifier.fit(train_features, y_train)
    predictions = classifier.predict(test_features)
    ignore = getattr(classifier, "ignore_index", 255)
    ious = per_class_iou(list(y_test), list(predictions), ignore_index=ignore, n_classes=n_classes)
    return mean_iou(ious), ious


def n_classes_of(masks, ignore_index=255):
    """One more than the largest label in ``masks`` (``ignore_index`` excluded)."""
    top = 0
    for mask in masks:
        mask = np.asarray(mask)
        labels = mask[mask != ignore_index]
        if labels.size:
            top = max(top, int(labels.max()))
    return top + 1


def as_list(images):
    """Images or masks as a list of arrays (an ``(N, ...)`` array is split along its first axis)."""
    return list(images)


def require_pandas():
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - pandas is in the "plot" extra
        raise ImportError("the studies return pandas DataFrames: pip install 'sklearn-ddpm[plot]'.") from exc
    return pandas
