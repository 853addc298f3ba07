"""Saving models so that loading them runs no code from the file.

A fitted segmenter is meant to be shared, and a pickle (joblib) file runs whatever code it holds
when it is loaded. The safe format stores tensors as safetensors and everything else
(parameters, fitted attributes, class names, package versions) as JSON, in one zip file; loading
parses those and rebuilds only classes of a fixed trusted set (this package's estimators and
backbones, scikit-learn's ``Pipeline``, skorch nets, PyTorch optimizers and losses). It is the
format ``sklearn-ddpm fit`` writes; ``predict``, ``evaluate``, the Dask workers and the napari
plugin read it, and refuse a pickle unless told to trust it (``--trust-pickle``,
``trust_pickle=True``). See docs/security.md.

Why not ``skops.io``: skops 0.16 could not dump a fitted pipeline ("Cannot directly construct
TensorBase": it has no node for torch tensors), and the skorch nets inside the classifiers pickle
their networks in their ``__getstate__``, so any format that saves through ``__getstate__`` would
carry a pickle. Here skorch nets are saved as their parameters plus ``state_dict``-s instead.
"""

from ._codec import ModelFormatError, UnsupportedValueError
from ._format import (FORMAT_VERSION, MEDIA_TYPE, MODEL_SUFFIX, UnsafeModelFileError, dumps_model, load_model,
                      loads_model, model_file_format, save_model)

__all__ = [
    "FORMAT_VERSION",
    "MEDIA_TYPE",
    "MODEL_SUFFIX",
    "ModelFormatError",
    "UnsafeModelFileError",
    "UnsupportedValueError",
    "dumps_model",
    "load_model",
    "loads_model",
    "model_file_format",
    "save_model",
]
