"""The labelling loop without a GUI: scribble, fit, see the prediction and its uncertainty, correct.

:class:`InteractiveSegmenter` holds a session's images, their cached DDPM features and their
sparse labels; it fits the ensemble of pixel MLPs in seconds (the UNet runs once per image),
suggests where to label next, and saves the model as ``sklearn-ddpm fit`` does. The napari
plugin (``sklearn_ddpm.napari``) is a view on it.

Conventions: the package's masks hold class ``k`` as ``k`` and 255 for unlabelled pixels;
napari's Labels layers hold 0 for unlabelled and ``k + 1`` for class ``k``
(:func:`napari_to_mask`, :func:`mask_to_napari`).
"""

from ._napari_labels import UNLABELLED, mask_to_napari, napari_to_mask
from ._session import InteractiveSegmenter
from ._suggest import Suggestion

__all__ = ["UNLABELLED", "InteractiveSegmenter", "Suggestion", "mask_to_napari", "napari_to_mask"]
