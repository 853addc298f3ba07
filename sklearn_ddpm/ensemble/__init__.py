"""The pixel classifier: an ensemble of DatasetGAN MLPs trained together with skorch."""

from ._classifier import MLPEnsembleClassifier
from ._module import BatchedMLPEnsemble, reference_hidden_sizes
from ._net import EnsembleNet, ReferenceEarlyStopping
from ._voting import js_uncertainty, majority_vote, uncertainty_score

__all__ = [
    "BatchedMLPEnsemble",
    "EnsembleNet",
    "MLPEnsembleClassifier",
    "ReferenceEarlyStopping",
    "js_uncertainty",
    "majority_vote",
    "reference_hidden_sizes",
    "uncertainty_score",
]
