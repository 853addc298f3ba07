"""Shared helpers: input validation and device handling."""

from ._devices import resolve_device
from ._validation import check_images, check_masks

__all__ = ["check_images", "check_masks", "resolve_device"]
