"""sklearn-ddpm: label-efficient semantic segmentation with diffusion models, the scikit-learn way.

Public API, re-exported from the sub-packages: ``backbone`` (loading UNets, block numbering),
``features`` (the transformer and its compact output), ``ensemble`` (the pixel classifier),
``postprocessing`` (image-guided refinement of its probabilities), ``segmenter`` (the two as one pipeline, assembled or loaded), ``semi_supervised`` (self-training on
unlabelled images), ``metrics``.

The names are imported on first use (PEP 562), so that ``import sklearn_ddpm`` and the command
line's ``--help`` do not load torch, diffusers and scikit-learn.
"""

import importlib
import importlib.util

from ._version import __version__

# Public name -> the sub-module that defines it.
_EXPORTS = {
    "ActivationCache": ".features",
    "Backbone": ".backbone",
    "DDPMFeatureTransformer": ".features",
    "GuidedFilter": ".postprocessing",
    "InteractiveSegmenter": ".interactive",
    "LatentBackbone": ".backbone",
    "MLPEnsembleClassifier": ".ensemble",
    "PixelFeatures": ".features",
    "SelfTrainingSegmenter": ".semi_supervised",
    "list_decoder_blocks": ".backbone",
    "load_backbone": ".backbone",
    "load_segmenter": ".segmenter",
    "make_segmenter": ".segmenter",
    "miou_score": ".metrics",
    "miou_scorer": ".metrics",
    "per_class_iou": ".metrics",
    "save_segmenter": ".segmenter",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a sub-package, e.g. sklearn_ddpm.metrics
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
