"""Learning from the DDPM's own samples (the paper's Table 3).

- :func:`sample_images`: draw images from a DDPM (diffusers ``DDPMPipeline`` with a DDPM or DDIM
  scheduler) into a folder, batched, seeded and resumable;
- :func:`label_samples` / :func:`uncertainty_filter`: pseudo-label the samples with a fitted
  segmenter and drop the most uncertain ones (the DatasetGAN / DatasetDDPM rule), recorded in
  :class:`PseudoLabels`;
- :class:`SegmentationNetworkClassifier`: an ordinary segmentation network trained on the
  synthetic pairs ("DatasetDDPM"), which predicts without any diffusion forward pass.

The Table 3 comparison itself is :func:`sklearn_ddpm.studies.synthetic_data_study`.
"""

from ._network import SegmentationNetworkClassifier, SegmentationUNet
from ._pseudo_labels import DEFAULT_DROP_FRACTION, PseudoLabels, label_samples, uncertainty_filter
from ._sampling import sample_images, sampling_scheduler

__all__ = [
    "DEFAULT_DROP_FRACTION",
    "PseudoLabels",
    "SegmentationNetworkClassifier",
    "SegmentationUNet",
    "label_samples",
    "sample_images",
    "sampling_scheduler",
    "uncertainty_filter",
]
