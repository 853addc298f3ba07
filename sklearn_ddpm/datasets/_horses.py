"""The Weizmann horse data: the 20-image sample bundled with the package and the project's copy."""

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._io import load_split_folder

HORSE_CLASSES = ["background", "horse"]
_BUNDLED = Path(__file__).resolve().parents[1] / "_data" / "horses"


def load_horses(split=None):
    """Load the 20 Weizmann horse images with figure/ground masks bundled with the package.

    Ten ``"train"`` images (the first ten of the project's ``labeled_pool`` split) and ten
    ``"test"`` images (the first ten of its ``test`` split), each at its own size. The bundled
    DDPM backbone never saw the test images. Research use only; cite Borenstein & Ullman
    (ECCV 2002), see ``DESCR``.

    Parameters
    ----------
    split : {"train", "test"} or None, default=None
        Which images to return; None returns the train images followed by the test images.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (list of HxWx3 uint8 arrays), ``masks`` (list of HxW uint8 arrays,
        0 = background, 1 = horse), ``names`` (list of str), ``split`` (array of "train" /
        "test", one per image), ``class_names`` (``["background", "horse"]``) and ``DESCR``.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import load_horses
    >>> data = load_horses(split="train")
    >>> len(data.images), data.class_names
    (10, ['background', 'horse'])
    >>> data.masks[0].shape == data.images[0].shape[:2]
    True
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}.")
    images, masks, names, labels = [], [], [], []
    for part in ("train", "test") if split is None else (split,):
        imgs, msks, nms, descr = load_split_folder(
            _BUNDLED, part, image_dir="images", mask_dir="masks", dataset="bundled horses"
        )
        images += imgs
        masks += msks
        names += nms
        labels += [part] * len(nms)
    return Bunch(images=images, masks=masks, names=names, split=np.array(labels),
                 class_names=list(HORSE_CLASSES), DESCR=descr)


def load_weizmann_horse(root, split="test", n=None):
    """Load a split of the project's copy of the Weizmann Horse Database.

    Parameters
    ----------
    root : str or path-like
        Folder with ``images/``, ``masks/`` and ``splits.json`` (the package does not know where
        it lives; the 20-image sample bundled with the package is :func:`load_horses`).
    split : {"test", "labeled_pool", "unlabeled"}, default="test"
        ``test`` (100 images) is for evaluation only; ``labeled_pool`` (50) may provide labels;
        ``unlabeled`` (168) is for unsupervised DDPM training.
    n : int, optional
        Keep only the first ``n`` images in the split's listed order (an n-shot training set).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (list of HxWx3 uint8), ``masks`` (list of HxW uint8 in {0, 1}; None for
        ``unlabeled``, whose masks must not be used), ``names``, ``split`` (str),
        ``class_names`` (``["background", "horse"]``) and ``DESCR``.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import load_weizmann_horse
    >>> train = load_weizmann_horse("data/weizmann_horse", split="labeled_pool", n=20)  # doctest: +SKIP
    >>> len(train.images)  # doctest: +SKIP
    20
    """
    images, masks, names, descr = load_split_folder(
        root, split, image_dir="images", mask_dir="masks", n=n,
        with_masks=split != "unlabeled", dataset="Weizmann horse",
    )
    return Bunch(images=images, masks=masks, names=names, split=split,
                 class_names=list(HORSE_CLASSES), DESCR=descr)
