"""Which decoder block at which timestep carries the semantics (paper, Figs. 2 and 3)."""

import time

import numpy as np
from tqdm.auto import tqdm

from ._common import as_list, evaluate, make_transformer, n_classes_of, require_pandas, study_classifier

#: Default timestep grid of the sweep, from nearly clean images to heavily noised ones.
SWEEP_STEPS = (50, 150, 250, 400, 600, 800)


def class_size_groups(masks, n_classes=None, ignore_index=255, threshold="median"):
    """Split classes into "small" and "large" by their mean area in the annotations (paper, Fig. 3).

    A class's area is the fraction of an image's labelled pixels it covers, averaged over all
    annotated images (0 where it is absent).

    Parameters
    ----------
    masks : list of (H, W) int arrays
        Annotations the areas are measured on (the training masks, so the split uses no test
        labels).
    n_classes : int, default=None
        Number of classes; one more than the largest label by default.
    ignore_index : int, default=255
    threshold : "median" or float, default="median"
        Classes with a mean area below it are "small"; "median" is the median of the classes'
        mean areas.

    Returns
    -------
    areas : ndarray of shape (n_classes,)
        Mean area fraction of every class.
    small : ndarray of bool, shape (n_classes,)
        True for the small classes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.studies import class_size_groups
    >>> masks = [np.array([[0, 0, 0, 1]]), np.array([[0, 0, 1, 1]])]
    >>> areas, small = class_size_groups(masks)
    >>> areas.round(3).tolist(), small.tolist()
    ([0.625, 0.375], [False, True])
    """
    masks = as_list(masks)
    if n_classes is None:
        n_classes = n_classes_of(masks, ignore_index)
    areas = np.zeros(n_classes)
    for mask in masks:
        labels = np.asarray(mask)
        labels = labels[labels != ignore_index].astype(np.int64)
        if labels.size:
            areas += np.bincount(labels, minlength=n_classes)[:n_classes] / labels.size
    areas /= max(len(masks), 1)
    cut = float(np.median(areas)) if threshold == "median" else float(threshold)
    return areas, areas < cut


def block_step_sweep(X_train, y_train, X_test, y_test, *, model=None, blocks="all", steps=SWEEP_STEPS,
                     classifier=None, transformer_params=None, n_classes=None, size_threshold="median",
                     random_state=0, progress=True):
    """mIoU of a pixel classifier trained on one decoder block at one timestep, for every pair.

    The paper's representation analysis (Baranchuk et al., 2022, Fig. 2, with the small/large class
    split of Fig. 3). For each timestep the UNet runs once per image with *all* the requested
    blocks hooked; every (block, step) cell then trains a classifier on that layer alone,
    sliced from the same features with :meth:`PixelFeatures.select`.

    Parameters
    ----------
    X_train, y_train : images and label maps
        Labelled training images (list of ``(H, W, 3)`` uint8 arrays or an ``(N, H, W, 3)`` array)
        and their ``(H, W)`` masks (255 = ignore).
    X_test, y_test : images and label maps
        Evaluation images and masks.
    model : see :class:`DDPMFeatureTransformer`, default=None
        The diffusion UNet; None is the bundled horse DDPM.
    blocks : "all" or tuple of int, default="all"
        Decoder blocks to sweep (paper numbering); "all" is every block of the decoder.
    steps : tuple of int, default=SWEEP_STEPS
        Timesteps to sweep.
    classifier : estimator, default=None
        Cloned for every cell and seeded with ``random_state``; by default a small
        :class:`MLPEnsembleClassifier` (2 members, 4 epochs, 2000 pixels per image).
    transformer_params : dict, default=None
        Further :class:`DDPMFeatureTransformer` parameters (``batch_size``, ``device``, ...).
    n_classes : int, default=None
        Number of classes; from the masks by default.
    size_threshold : "median" or float, default="median"
        See :func:`class_size_groups`; the groups are measured on ``y_train``.
    random_state : int, default=0
        Seed of the noise and of every cell's classifier (the same for all cells, so cells differ
        only by their features).
    progress : bool, default=True
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per (block, step): ``block``, ``step``, ``n_features``, ``miou``, ``miou_small``,
        ``miou_large`` and ``fit_seconds``; ``attrs`` hold the per-class ``iou`` of every cell
        (``{(block, step): ndarray}``), the class ``areas``, the ``small`` mask and
        ``extract_seconds``. Pivot for a heatmap with
        ``df.pivot(index="block", columns="step", values="miou")`` or use
        :func:`plot_block_step_heatmap`.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> from sklearn_ddpm.studies import block_step_sweep, plot_block_step_heatmap
    >>> table = block_step_sweep(X_train, y_train, X_test, y_test, model=tiny_unet(),
    ...                          blocks=(2, 5), steps=(50, 250))  # doctest: +SKIP
    >>> table.loc[table.miou.idxmax(), ["block", "step"]]  # doctest: +SKIP
    """
    pd = require_pandas()
    X_train, y_train, X_test, y_test = (as_list(a) for a in (X_train, y_train, X_test, y_test))
    ignore = getattr(classifier, "ignore_index", 255) if classifier is not None else 255
    if n_classes is None:
        n_classes = n_classes_of(y_train + y_test, ignore)
    areas, small = class_size_groups(y_train, n_classes, ignore, size_threshold)

    probe = make_transformer(model, (0,), steps[:1], transformer_params, random_state)
    n_blocks = probe.backbone_.n_decoder_blocks
    blocks = tuple(range(n_blocks)) if isinstance(blocks, str) and blocks == "all" else tuple(int(b) for b in blocks)

    rows, ious, extract_seconds = [], {}, 0.0
    cells = tqdm(total=len(blocks) * len(steps), desc="block x step sweep", disable=not progress)
    for t in steps:
        # One UNet pass per (image, step) gives every block; the cells below only slice it.
        start = time.perf_counter()
        transformer = make_transformer(probe.backbone_, blocks, (t,), transformer_params, random_state)
        train_all = transformer.transform(X_train)
        test_all = transformer.transform(X_test)
        extract_seconds += time.perf_counter() - start
        for b in blocks:
            start = time.perf_counter()
            clf = study_classifier(classifier, random_state, n_classes)
            train, test = train_all.select([(t, b)]), test_all.select([(t, b)])
            miou, iou = evaluate(clf, train, y_train, test, y_test, n_classes)
            ious[(b, t)] = iou
            rows.append(dict(block=b, step=t, n_features=train.n_features, miou=miou,
                             miou_small=_nanmean(iou[small]), miou_large=_nanmean(iou[~small]),
                             fit_seconds=time.perf_counter() - start))
            cells.update()
        del train_all, test_all
    cells.close()
    table = pd.DataFrame(rows).sort_values(["block", "step"], ignore_index=True)
    table.attrs.update(iou=ious, areas=areas, small=small, extract_seconds=extract_seconds)
    return table


def _nanmean(values):
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
