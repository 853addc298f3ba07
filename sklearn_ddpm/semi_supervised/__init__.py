"""Semi-supervised learning: the unlabelled images used by the pixel classifier too.

:class:`SelfTrainingSegmenter` wraps a segmenter: it is fitted on the labelled images, labels the
unlabelled ones (masks entirely ``ignore_index``), keeps the pixels its ensemble is most certain
of (the uncertainty filter of :mod:`sklearn_ddpm.synthetic`) and refits, for ``n_rounds``
rounds. User guide: ``docs/self_training.md``.
"""

from ._self_training import SelfTrainingSegmenter

__all__ = ["SelfTrainingSegmenter"]
