"""The paper's evaluation protocol on its six datasets (Table 2), in one call."""

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..datasets._paper import PAPER_DATASETS, load_paper_dataset, paper_dataset_folder
from ..ensemble import MLPEnsembleClassifier
from ..metrics import confusion_matrix_images, iou_from_confusion, mean_iou
from ._common import make_transformer, require_pandas


def resolve_checkpoint(checkpoints, name):
    """The checkpoint of dataset ``name``: from a dict, or ``<folder>/<reference file name>``.

    In a folder, the reference's file (e.g. ``lsun_horse.pt``) or a diffusers folder of the same
    stem (``lsun_horse/``) is used.
    """
    info = PAPER_DATASETS[name]
    if isinstance(checkpoints, dict):
        if name not in checkpoints:
            raise ValueError(f"checkpoints has no entry for {name!r} (keys: {sorted(checkpoints)}).")
        return checkpoints[name]
    folder = Path(checkpoints)
    if not folder.is_dir():
        raise NotADirectoryError(f"checkpoints {folder} is not a folder (or pass a dict dataset -> checkpoint).")
    for candidate in (folder / info.checkpoint, folder / Path(info.checkpoint).stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no checkpoint for {name}: expected {folder / info.checkpoint} (the reference's "
                            f"checkpoints/ddpm/{info.checkpoint}) or a diffusers folder {folder / Path(info.checkpoint).stem}.")


def reproduce(datasets_root, checkpoints, *, datasets=None, seeds=(0, 1, 2, 3, 4), n_estimators=10,
              classifier_params=None, transformer_params=None, n_train=None, n_test=None, resolution="paper",
              test_batch=16, progress=True):
    """Run the paper's protocol on its benchmark datasets: mean ± std test mIoU over seeds.

    For every dataset: features of the reference's blocks and steps (``experiments/<dataset>/
    ddpm.json``: blocks 5, 6, 7, 8, 12 at steps 50, 150, 250, one fixed noise) from the dataset's
    DDPM; one :class:`MLPEnsembleClassifier` of ``n_estimators`` members per seed, trained on the
    ``real/train`` images; every ensemble scored on the ``real/test`` images, which are streamed
    in chunks of ``test_batch`` so ADE-Bedroom's 650 test images never sit in memory at once.
    Per-class IoU is accumulated over the test set; mIoU averages the classes present in truth or
    prediction (:func:`sklearn_ddpm.miou_score`).

    Parameters
    ----------
    datasets_root : str or path-like
        The extracted ``datasets`` folder of the reference (``<dataset>/real/{train,test}``).
    checkpoints : str, path-like or dict
        A folder with the reference's checkpoint files (``lsun_horse.pt``, ``ffhq.pt``,
        ``lsun_bedroom.pt``, ``lsun_cat.pt``) or diffusers folders of those stems, or a dict
        ``dataset -> model`` (anything :class:`DDPMFeatureTransformer` accepts).
    datasets : list of str, default=None
        Datasets to run; by default every one of :data:`PAPER_DATASETS` found under ``datasets_root``.
    seeds : tuple of int, default=(0, 1, 2, 3, 4)
        Classifier seeds (member inits and data orders); the noise stays fixed, as in the reference.
    n_estimators : int, default=10
        Ensemble size (paper: 10).
    classifier_params : dict, default=None
        Further :class:`MLPEnsembleClassifier` parameters (e.g. ``device="cuda"``, ``batch_size``).
    transformer_params : dict, default=None
        Further :class:`DDPMFeatureTransformer` parameters (e.g. ``device``, ``autocast_dtype``,
        ``batch_size``: images per UNet forward pass).
    n_train, n_test : int, default=None
        Override the reference's image counts (for quick checks).
    resolution : "paper", int or None, default="paper"
        Resize images and masks before scoring: "paper" uses the reference's 256; None keeps them.
    test_batch : int, default=16
    progress : bool, default=True

    Returns
    -------
    pandas.DataFrame
        One row per dataset: ``dataset``, ``n_classes``, ``n_train``, ``n_test``, ``miou_mean``,
        ``miou_std`` (in %, sample standard deviation over seeds, ``ddof=1``; NaN for one seed),
        ``paper_miou``, ``paper_std``,
        ``mious`` (per seed), ``seconds``.

    Examples
    --------
    >>> from sklearn_ddpm.studies import reproduce
    >>> table = reproduce("datasets", "checkpoints/ddpm", datasets=["horse_21"],
    ...                   classifier_params={"device": "cuda"}, transformer_params={"device": "cuda"})  # doctest: +SKIP
    >>> table[["dataset", "miou_mean", "miou_std", "paper_miou", "paper_std"]]  # doctest: +SKIP
    """
    pd = require_pandas()
    if datasets is None:
        datasets = [name for name in PAPER_DATASETS if _has(datasets_root, name)]
        if not datasets:
            raise FileNotFoundError(f"none of the paper's datasets {sorted(PAPER_DATASETS)} is under {datasets_root} "
                                    "(expected <dataset>/real/train and real/test).")
    unknown = [name for name in datasets if name not in PAPER_DATASETS]
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; the paper's datasets are {sorted(PAPER_DATASETS)}.")
    rows = []
    for name in datasets:
        start = time.perf_counter()
        info = PAPER_DATASETS[name]
        size = info.resolution if resolution == "paper" else resolution
        X_train, y_train = load_paper_dataset(datasets_root, name, "train", n=n_train, resolution=size, return_X_y=True)
        transformer = make_transformer(resolve_checkpoint(checkpoints, name), info.blocks, info.steps,
                                       {"progress": progress, **(transformer_params or {})}, random_state=0)
        train_features = transformer.transform(X_train)
        classifiers = []
        for seed in tqdm(seeds, desc=f"{name}: ensembles", disable=not progress):
            params = dict(n_estimators=n_estimators, n_classes=info.n_classes, ignore_index=info.ignore_index,
                          max_pixels_per_class=None, random_state=seed)  # the paper: every labelled pixel
            params.update(classifier_params or {})
            classifiers.append(MLPEnsembleClassifier(**params).fit(train_features, y_train))
        del train_features

        X_test, y_test = load_paper_dataset(datasets_root, name, "test", n=n_test, resolution=size, return_X_y=True)
        confusion = [np.zeros((info.n_classes, info.n_classes), np.int64) for _ in seeds]
        for chunk in range(0, len(X_test), test_batch):
            features = transformer.transform(X_test[chunk:chunk + test_batch])
            truth = y_test[chunk:chunk + test_batch]
            for k, clf in enumerate(classifiers):
                confusion[k] += confusion_matrix_images(truth, list(clf.predict(features)),
                                                        ignore_index=info.ignore_index, n_classes=info.n_classes)
        # The ignored label has no true pixels; predictions of it are errors of the other classes.
        mious = np.array([100 * mean_iou(iou_from_confusion(c), exclude=[info.ignore_index]) for c in confusion])
        rows.append(dict(dataset=name, n_classes=info.n_classes, n_train=len(X_train), n_test=len(X_test),
                         miou_mean=float(mious.mean()), miou_std=_sample_std(mious), paper_miou=info.paper_miou,
                         paper_std=info.paper_std, mious=mious.tolist(), seconds=time.perf_counter() - start))
    return pd.DataFrame(rows)


def _sample_std(values):
    """Sample standard deviation (ddof=1); NaN for a single value, which has no spread to estimate."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _has(root, name):
    try:
        paper_dataset_folder(root, name, "train")
        paper_dataset_folder(root, name, "test")
    except FileNotFoundError:
        return False
    return True
