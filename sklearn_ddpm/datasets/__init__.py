"""Image and mask readers, the bundled horse sample and loaders for the project's datasets."""

from ._io import read_image, read_mask

__all__ = ["read_image", "read_mask"]
