"""Pseudo-labels for DDPM samples: a fitted segmenter labels them, the most uncertain are dropped.

The uncertainty of a sample is the reference's (DatasetGAN, kept by DatasetDDPM): the mean of the
10 % highest per-pixel Jensen-Shannon divergences between the ensemble's members
(:func:`sklearn_ddpm.ensemble.uncertainty_score`).
"""

import json
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..datasets import list_images, read_image, read_mask
from ..ensemble import MLPEnsembleClassifier, uncertainty_score
from ..utils._atomic import atomic_save_image, atomic_write, ensure_directory

#: the reference's default share of samples dropped (``--uncertainty_portion 0.1`` of its train_deeplab.py)
DEFAULT_DROP_FRACTION = 0.1
RECORD = "pseudo_labels.json"


def uncertainty_filter(scores, drop_fraction=DEFAULT_DROP_FRACTION, drop_most_certain=0):
    """Which samples to keep: all but the ``int(n * drop_fraction)`` dropped by uncertainty.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        One uncertainty per sample (higher = less certain).
    drop_fraction : float in [0, 1), default=0.1
        Share of the samples dropped (the reference's default).
    drop_most_certain : int, default=0
        How many of the dropped samples come from the *certain* end instead of the uncertain end.
        The reference code (DatasetGAN's ``train_deeplab.py``, kept by DatasetDDPM) keeps the
        window ``sorted[30 : n - k + 30]``, i.e. ``drop_most_certain=30``: the 30 most certain
        samples (often blank or degenerate) and the ``k - 30`` most uncertain are dropped. 0 (the
        default) drops the ``k`` most uncertain, which is what the papers describe and what works
        for small ``n`` (the reference's window is empty when ``k < 30``).

    Returns
    -------
    ndarray of bool, shape (n_samples,)
        True for the kept samples. Ties are broken by position (a stable sort).

    Examples
    --------
    >>> from sklearn_ddpm.synthetic import uncertainty_filter
    >>> uncertainty_filter([0.3, 0.9, 0.1, 0.5, 0.2], drop_fraction=0.4).tolist()
    [True, False, True, False, True]
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one uncertainty per sample (1-D), got shape {scores.shape}.")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values.")
    if not isinstance(drop_fraction, numbers.Real) or not 0 <= drop_fraction < 1:
        raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction!r}.")
    n_dropped = int(len(scores) * drop_fraction)
    if not isinstance(drop_most_certain, numbers.Integral) or not 0 <= drop_most_certain <= n_dropped:
        raise ValueError(f"drop_most_certain must be an int in [0, int(n_samples * drop_fraction) = {n_dropped}], "
                         f"got {drop_most_certain!r}.")
    order = np.argsort(scores, kind="stable")
    kept = np.zeros(len(scores), dtype=bool)
    kept[order[drop_most_certain: len(scores) - n_dropped + drop_most_certain]] = True
    return kept


@dataclass
class PseudoLabels:
    """Samples with their pseudo-labels and uncertainties, as :func:`label_samples` wrote them.

    Attributes
    ----------
    image_paths, mask_paths : list of pathlib.Path
        Every sample and its label PNG (class indices), in the same order.
    uncertainty : ndarray of shape (n_samples,)
        Each sample's uncertainty (mean of its 10 % most uncertain pixels).
    kept : ndarray of bool, shape (n_samples,)
        The samples that survive :func:`uncertainty_filter`.
    record : pathlib.Path
        The JSON record (rule, and every sample's score and fate).
    """

    image_paths: list
    mask_paths: list
    uncertainty: np.ndarray
    kept: np.ndarray
    record: Path

    def load(self, kept_only=True):
        """``(images, masks)``: the (kept) samples as uint8 RGB arrays and their label maps."""
        pick = np.flatnonzero(self.kept) if kept_only else np.arange(len(self.image_paths))
        return [read_image(self.image_paths[i]) for i in pick], [read_mask(self.mask_paths[i]) for i in pick]

    @classmethod
    def read(cls, label_dir):
        """The pseudo-labels recorded in ``label_dir`` (the folder :func:`label_samples` wrote)."""
        record = Path(label_dir) / RECORD
        if not record.is_file():
            raise FileNotFoundError(f"{record} not found: label the samples with label_samples first.")
        samples = json.loads(record.read_text())["samples"]
        root = record.parent
        return cls([(root / s["image"]).resolve() for s in samples], [root / s["mask"] for s in samples],
                   np.array([s["uncertainty"] for s in samples]), np.array([s["kept"] for s in samples]), record)


def label_samples(segmenter, sample_dir, label_dir=None, *, drop_fraction=DEFAULT_DROP_FRACTION, drop_most_certain=0,
                  batch_size=None, progress=True):
    """Label every image of ``sample_dir`` with a fitted segmenter and filter them by uncertainty.

    Writes one label PNG per sample (class indices, the sample's name) to ``label_dir`` and a
    record ``pseudo_labels.json`` with the rule and, for every sample, its uncertainty and whether
    it is kept. Every file is written atomically.

    Parameters
    ----------
    segmenter : sklearn.pipeline.Pipeline
        Fitted; its last step an :class:`~sklearn_ddpm.MLPEnsembleClassifier` (whose members'
        disagreement is the uncertainty), the steps before it the features (see
        :func:`sklearn_ddpm.make_segmenter`).
    sample_dir : str or path-like
        Folder of sample images (e.g. written by :func:`sample_images`).
    label_dir : str or path-like, default=None
        Where the labels and the record go; ``sample_dir / "pseudo_labels"`` when None. Use one
        folder per segmenter.
    drop_fraction, drop_most_certain :
        The filter, see :func:`uncertainty_filter` (default: drop the 10 % most uncertain).
    batch_size : int, default=None
        Samples per feature extraction call; the feature step's ``batch_size`` when None.
    progress : bool, default=True
        Show a progress bar over samples.

    Returns
    -------
    PseudoLabels

    Examples
    --------
    >>> pseudo = label_samples(segmenter, "samples/")  # doctest: +SKIP
    >>> images, masks = pseudo.load()  # the kept samples and their labels  # doctest: +SKIP
    """
    clf = segmenter[-1]
    if not isinstance(clf, MLPEnsembleClassifier):
        raise TypeError(f"the segmenter's last step must be a fitted MLPEnsembleClassifier (its members' "
                        f"disagreement is the uncertainty), got {type(clf).__name__}.")
    features = segmenter[:-1]
    sample_dir = Path(sample_dir)
    label_dir = ensure_directory(sample_dir / "pseudo_labels" if label_dir is None else label_dir, "label_dir")
    uncertainty_filter([], drop_fraction, 0)  # check the rule before the work
    image_paths = list_images(sample_dir, "sample_dir")
    batch = batch_size or segmenter[0].forward_batch_size()
    mask_paths, scores = [], []
    for start in tqdm(range(0, len(image_paths), batch), desc="pseudo-labelling", unit="batch",
                      disable=not progress):
        paths = image_paths[start:start + batch]
        labels, maps = clf.predict_with_uncertainty(features.transform([read_image(p) for p in paths]))
        for path, label, js_map in zip(paths, labels, maps):
            mask_path = label_dir / f"{path.stem}.png"
            atomic_save_image(Image.fromarray(np.asarray(label, dtype=np.uint8)), mask_path)
            mask_paths.append(mask_path)
            scores.append(float(uncertainty_score(torch.as_tensor(np.asarray(js_map)))))
    kept = uncertainty_filter(scores, drop_fraction, drop_most_certain)
    record = label_dir / RECORD
    with atomic_write(record, "w") as f:
        json.dump({
            "rule": {"score": "mean of the 10% highest per-pixel Jensen-Shannon divergences of the members",
                     "drop_fraction": drop_fraction, "drop_most_certain": drop_most_certain,
                     "n_samples": len(scores), "n_kept": int(kept.sum())},
            "samples": [{"image": _relative(p, label_dir), "mask": m.name, "uncertainty": s, "kept": bool(k)}
                        for p, m, s, k in zip(image_paths, mask_paths, scores, kept)],
        }, f, indent=1)
    return PseudoLabels(image_paths, mask_paths, np.array(scores), kept, record)


def _relative(path, start):
    import os

    return os.path.relpath(Path(path).resolve(), Path(start).resolve())
