"""sklearn-ddpm: label-efficient semantic segmentation with diffusion models, the scikit-learn way.

Public API, re-exported from the sub-packages: ``backbone`` (loading UNets, block numbering),
``features`` (the transformer and its compact output), ``ensemble`` (the pixel classifier),
``postprocessing`` (image-guided refinement of its probabilities), ``segmenter`` (the two as one pipeline, assembled or loaded), ``metrics``.
"""

from .backbone import Backbone, LatentBackbone, list_decoder_blocks, load_backbone
from .ensemble import MLPEnsembleClassifier
from .features import ActivationCache, DDPMFeatureTransformer, PixelFeatures
from .interactive import InteractiveSegmenter
from .metrics import miou_score, miou_scorer, per_class_iou
from .postprocessing import GuidedFilter
from .segmenter import load_segmenter, make_segmenter, save_segmenter

from ._version import __version__
__all__ = [
    "ActivationCache",
    "Backbone",
    "DDPMFeatureTransformer",
    "GuidedFilter",
    "InteractiveSegmenter",
    "LatentBackbone",
    "MLPEnsembleClassifier",
    "PixelFeatures",
    "__version__",
    "list_decoder_blocks",
    "load_backbone",
    "load_segmenter",
    "make_segmenter",
    "miou_score",
    "miou_scorer",
    "per_class_iou",
    "save_segmenter",
]
