"""Run sklearn-ddpm on a Dask cluster (``dask.distributed``): segment large image collections, and
large images as bands of rows written into one OME-Zarr store (``format="zarr"``, tiling models).

Needs the ``distributed`` extra: ``pip install 'sklearn-ddpm[distributed]'``. See docs/scaling.md
for local clusters, Slurm (dask-jobqueue), Kubernetes (dask-kubernetes) and GPUs (dask-cuda).
"""

from .._outputs._predicting import PredictionSummary
from ._predict import predict_folder

__all__ = ["PredictionSummary", "predict_folder"]
