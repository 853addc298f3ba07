"""Image and mask readers, the bundled horse sample and loaders for the project's data sets."""

from ._ccp import load_ccp_clothing
from ._horses import load_horses, load_weizmann_horse
from ._folders import list_images, load_image_folder, pair_images_and_masks, read_class_names
from ._arrays import read_array_images
from ._io import read_image, read_mask, shrink_pairs
from ._paper import PAPER_DATASETS, PaperDataset, load_paper_dataset

__all__ = ["PAPER_DATASETS", "PaperDataset", "list_images", "load_ccp_clothing", "load_horses", "load_image_folder", "load_paper_dataset", "load_weizmann_horse",
           "pair_images_and_masks", "read_array_images", "read_class_names", "read_image", "read_mask", "shrink_pairs"]
