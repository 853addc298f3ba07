"""Image and mask readers, the bundled horse sample and loaders for the project's data sets."""

from ._ccp import load_ccp_clothing
from ._horses import load_horses, load_weizmann_horse
from ._io import read_image, read_mask

__all__ = ["load_ccp_clothing", "load_horses", "load_weizmann_horse", "read_image", "read_mask"]
