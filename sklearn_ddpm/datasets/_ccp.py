"""The project's copy of the Clothing Co-Parsing (CCP) data set."""

import json
from pathlib import Path

from sklearn.utils import Bunch

from ._io import load_split_folder


def load_ccp_clothing(root, split="test", coarse=True, n=None):
    """Load a split of the project's copy of Clothing Co-Parsing (Yang et al., CVPR 2014).

    Parameters
    ----------
    root : str or path-like
        Folder with ``images/``, ``masks/``, ``masks_coarse/``, ``classes.json`` and
        ``splits.json`` (the package does not know where it lives).
    split : {"test", "labeled_pool", "unlabeled"}, default="test"
        ``test`` (130 images, evaluation only), ``labeled_pool`` (50) or ``unlabeled`` (300
        images without masks, for unsupervised DDPM training).
    coarse : bool, default=True
        Use the 11 coarse classes (recommended for few-shot runs) instead of the 59 fine ones.
    n : int, optional
        Keep only the first ``n`` images in the split's listed order.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (list of HxWx3 uint8), ``masks`` (list of HxW uint8 class indices; None for
        ``unlabeled``), ``names``, ``split`` (str), ``class_names`` (from ``classes.json``) and
        ``DESCR``.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import load_ccp_clothing
    >>> test = load_ccp_clothing("data/ccp_clothing", split="test", n=5)  # doctest: +SKIP
    >>> test.class_names[:3]  # doctest: +SKIP
    ['background', 'skin', 'hair']
    """
    root = Path(root)
    images, masks, names, descr = load_split_folder(
        root, split, image_dir="images", mask_dir="masks_coarse" if coarse else "masks", n=n,
        with_masks=split != "unlabeled", dataset="CCP clothing",
    )
    classes = json.loads((root / "classes.json").read_text())
    class_names = list(classes["coarse_classes" if coarse else "fine_classes"])
    return Bunch(images=images, masks=masks, names=names, split=split,
                 class_names=class_names, DESCR=descr)
