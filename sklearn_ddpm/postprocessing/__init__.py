"""Post-processing of the pixel classifier's output: image-guided refinement and mirror averaging.

:class:`GuidedFilter` sharpens class probabilities along the image's edges (the features are
computed at 32²–64² and upsampled, which blurs outlines); :func:`average_mirrored` averages the
members' probabilities of an image and of its horizontal mirror (test-time flip augmentation).
Both are options of :class:`~sklearn_ddpm.MLPEnsembleClassifier` (``refine``) and of
:class:`~sklearn_ddpm.DDPMFeatureTransformer` (``flip_tta``).
"""

from ._guided import GuidedFilter
from ._mirror import average_mirrored

__all__ = ["GuidedFilter", "average_mirrored"]
