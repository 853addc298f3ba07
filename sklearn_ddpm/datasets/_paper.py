"""The paper's six benchmark datasets, in the layout of the reference repository's ``datasets.tar.gz``.

Layout (yandex-research/ddpm-segmentation, ``datasets/download_datasets.sh``)::

    <root>/<dataset>/real/train/<name>.jpg   <name>.npy   (label array, same stem)
    <root>/<dataset>/real/test/...

Sources of the numbers below:

- class counts, ignore labels, training/testing image counts, checkpoints, blocks and steps: the
  reference's ``experiments/<dataset>/ddpm.json`` files (``number_class``, ``ignore_label``,
  ``training_number``, ``testing_number``, ``model_path``, ``blocks``, ``steps``) at commit
  c49167211af94bf538d8e8336c25bbc2cd267d6b. Bedroom-28 has 28 classes plus label 0, which the
  reference ignores (``number_class`` 29, ``ignore_label`` 0).
- mIoU (mean ± std, %): the DDPM row of Table 2 of Baranchuk et al., "Label-Efficient Semantic
  Segmentation with Diffusion Models", ICLR 2022.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._io import image_extensions, read_image, read_mask


@dataclass(frozen=True)
class PaperDataset:
    """One of the paper's benchmarks: its reference settings and its reported DDPM score."""

    name: str
    n_classes: int
    ignore_index: int
    n_train: int
    n_test: int
    checkpoint: str
    paper_miou: float
    paper_std: float
    blocks: tuple = (5, 6, 7, 8, 12)
    steps: tuple = (50, 150, 250)
    resolution: int = 256


#: The six datasets of the paper's Table 2, keyed by the reference's folder names.
PAPER_DATASETS = {
    d.name: d
    for d in (
        PaperDataset("bedroom_28", 29, 0, 40, 20, "lsun_bedroom.pt", 49.4, 1.9),
        PaperDataset("ffhq_34", 34, 255, 20, 20, "ffhq.pt", 59.1, 1.4),
        PaperDataset("cat_15", 15, 255, 30, 20, "lsun_cat.pt", 53.7, 3.3),
        PaperDataset("horse_21", 21, 255, 30, 30, "lsun_horse.pt", 65.0, 0.8),
        PaperDataset("celeba_19", 19, 255, 20, 500, "ffhq.pt", 59.9, 1.0),
        PaperDataset("ade_bedroom_30", 30, 255, 50, 650, "lsun_bedroom.pt", 34.6, 1.7),
    )
}


def paper_dataset_folder(root, name, split):
    """The ``real/<split>`` folder of dataset ``name`` under ``root`` (which may also be its parent)."""
    if name not in PAPER_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; the paper's datasets are {sorted(PAPER_DATASETS)}.")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    root = Path(root)
    for base in (root, root / "datasets"):
        folder = base / name / "real" / split
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"{root / name / 'real' / split} does not exist; expected the layout of the reference's datasets.tar.gz "
        "(<root>/<dataset>/real/{train,test}/*.jpg with .npy labels)."
    )


def load_paper_dataset(root, name, split="train", n=None, resolution=None, return_X_y=False):
    """Load one of the paper's datasets from the reference repository's ``datasets.tar.gz`` layout.

    As the reference does, images are taken in sorted file-name order and the first ``n`` kept.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``<name>/real/{train,test}`` (the extracted ``datasets`` folder, or its parent).
    name : str
        One of :data:`PAPER_DATASETS`: "bedroom_28", "ffhq_34", "cat_15", "horse_21", "celeba_19",
        "ade_bedroom_30".
    split : {"train", "test"}, default="train"
    n : int, default=None
        Number of images; the reference's ``training_number`` / ``testing_number`` by default.
        Fewer images on disk is an error, so a truncated download is not silently scored.
    resolution : int, default=None
        Resize images (bilinear) and masks (nearest) to ``resolution`` × ``resolution``, as the
        reference does before scoring (256); None keeps the stored size.
    return_X_y : bool, default=False
        Return ``(images, masks)`` instead of a Bunch.

    Returns
    -------
    Bunch with ``images`` (list of (H, W, 3) uint8), ``masks`` (list of (H, W) int arrays),
    ``filenames``, ``info`` (:class:`PaperDataset`), or ``(images, masks)``.

    Examples
    --------
    >>> from sklearn_ddpm.studies import load_paper_dataset
    >>> data = load_paper_dataset("datasets", "horse_21", "train")  # doctest: +SKIP
    >>> len(data.images), data.info.n_classes  # doctest: +SKIP
    (30, 21)
    """
    folder = paper_dataset_folder(root, name, split)
    info = PAPER_DATASETS[name]
    extensions = image_extensions()
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())
    wanted = (info.n_train if split == "train" else info.n_test) if n is None else int(n)
    if len(paths) < wanted:
        raise ValueError(f"{folder} holds {len(paths)} images but {wanted} are needed (n={n}); "
                         "is the download complete?")
    paths = paths[:wanted]
    images, masks = [], []
    for path in paths:
        label_path = path.with_suffix(".npy")
        if not label_path.is_file():
            raise FileNotFoundError(f"{path} has no label file {label_path.name} next to it.")
        image, mask = read_image(path), read_mask(label_path)
        if resolution is not None:
            size = (int(resolution), int(resolution))
            if image.shape[:2] != size:
                image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            if mask.shape != size:
                mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize(size, Image.NEAREST))
        elif mask.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: mask shape {mask.shape} differs from the image's {image.shape[:2]}; "
                             "pass resolution= to resize both.")
        images.append(image)
        masks.append(mask.astype(np.int64))
    if return_X_y:
        return images, masks
    return Bunch(images=images, masks=masks, filenames=[str(p) for p in paths], info=info)
