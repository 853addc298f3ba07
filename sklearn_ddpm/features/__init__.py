"""Feature extraction: the transformer, the compact feature container, the activation cache."""

from ._cache import ActivationCache
from ._container import PixelFeatures
from ._presets import FEATURE_PRESETS, preset_grid
from ._transformer import PAPER_BLOCKS, PAPER_STEPS, DDPMFeatureTransformer, auto_blocks

__all__ = [
    "FEATURE_PRESETS",
    "PAPER_BLOCKS",
    "PAPER_STEPS",
    "ActivationCache",
    "DDPMFeatureTransformer",
    "PixelFeatures",
    "auto_blocks",
    "preset_grid",
]
