"""Train small DDPMs (diffusers ``UNet2DModel``) whose decoder activations serve as pixel features.

:func:`train_ddpm` trains with the paper's noise schedule, EMA weights, random crops and flips,
and atomic checkpoints it resumes from after an interruption; the result is a
``DDPMPipeline.save_pretrained`` folder. See :mod:`._presets` for the model sizes. Started by
``torchrun``, it trains data-parallel (``DistributedDataParallel``) with the same global batch.

Modules: ``_data`` (images, crops and flips), ``_checkpoints`` (checkpoint files and random
states), ``_train`` (the loop), ``_distributed`` (the torchrun process group and collectives),
``_export`` (checkpoint to pipeline folder, with its record and model card), ``_card`` (the model card).
"""

from ._checkpoints import list_checkpoints, load_checkpoint
from ._export import export_checkpoint, export_run
from ._presets import PRESETS, get_preset
from ._train import TrainDDPMInterrupted, train_ddpm

__all__ = [
    "PRESETS",
    "TrainDDPMInterrupted",
    "export_checkpoint",
    "export_run",
    "get_preset",
    "list_checkpoints",
    "load_checkpoint",
    "train_ddpm",
]
