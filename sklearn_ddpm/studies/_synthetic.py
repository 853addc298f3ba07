"""Real or synthetic training data (paper, Table 3): DDPM on real, DDPM on synthetic, DatasetDDPM."""

import time
from pathlib import Path

from sklearn.base import clone
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from ..features import ActivationCache
from ..metrics import mean_iou, per_class_iou
from ._common import as_list, make_transformer, n_classes_of, require_pandas, study_classifier

#: the rows of the paper's Table 3, in its order
SYNTHETIC_METHODS = ("DDPM on real", "DDPM on synthetic", "DatasetDDPM")


def synthetic_data_study(X_train, y_train, X_test, y_test, *, sample_dir, n_samples=1000, seeds=(0, 1, 2),
                         model=None, blocks="auto", steps=(50, 150, 250), classifier=None, synthetic_classifier=None,
                         network=None, transformer_params=None, sampling_params=None, drop_fraction=0.1,
                         drop_most_certain=0, n_classes=None, dataset="data", progress=True):
    """Train on the few real masks or on the DDPM's pseudo-labelled samples; score on the test set.

    The three rows of the paper's Table 3, on one dataset:

    - **DDPM on real**: the pixel-MLP ensemble on the DDPM features of the real labelled images;
    - **DDPM on synthetic**: the same ensemble trained on the kept samples and their pseudo-labels;
    - **DatasetDDPM**: a :class:`~sklearn_ddpm.synthetic.SegmentationNetworkClassifier` trained on
      the kept samples and pseudo-labels; it predicts without the DDPM.

    The samples are drawn once into ``sample_dir`` (resumable: a rerun reuses them, see
    :func:`~sklearn_ddpm.synthetic.sample_images`); for every seed the real-data ensemble labels
    them (``sample_dir/pseudo_labels_seed<k>``, with the record of kept and dropped samples) and
    the two synthetic methods train on what it keeps. Features are computed once per image.

    Parameters
    ----------
    X_train, y_train : images and label maps
        The real labelled images.
    X_test, y_test : images and label maps
        Evaluation images, scored at their own sizes.
    sample_dir : str or path-like
        Folder of the samples and their pseudo-labels.
    n_samples : int, default=1000
        Samples to draw.
    seeds : tuple of int, default=(0, 1, 2)
        One run per seed: it seeds the ensembles and the network (the samples are the same).
    model, blocks, steps, transformer_params :
        The DDPM and its features, see :class:`~sklearn_ddpm.DDPMFeatureTransformer` (None = the
        bundled horse DDPM). An in-memory :class:`~sklearn_ddpm.ActivationCache` is used unless
        ``transformer_params`` sets ``memory`` (pass one object to several calls to share it); the
        DDPM rows' prediction time is measured without it.
    classifier : estimator, default=None
        The pixel classifier of "DDPM on real" (cloned and seeded per run); its ensemble's
        disagreement scores the samples. Default: the studies' small
        :class:`~sklearn_ddpm.MLPEnsembleClassifier`.
    synthetic_classifier : estimator, default=None
        The pixel classifier of "DDPM on synthetic"; ``classifier`` when None.
    network : estimator, default=None
        The DatasetDDPM network (cloned and seeded per run); default
        ``SegmentationNetworkClassifier(image_size=<the DDPM's>, n_classes=n_classes)``.
    sampling_params : dict, default=None
        Extra arguments of :func:`~sklearn_ddpm.synthetic.sample_images` (``scheduler``,
        ``num_inference_steps``, ``batch_size``, ``device``, ``random_state``).
    drop_fraction, drop_most_certain :
        The uncertainty filter, see :func:`~sklearn_ddpm.synthetic.uncertainty_filter`.
    n_classes : int, default=None
        Number of classes; from the masks when None.
    dataset : str, default="data"
        The dataset's name in the result (the table's column).
    progress : bool, default=True

    Returns
    -------
    pandas.DataFrame
        One row per (method, seed): ``dataset``, ``method``, ``seed``, ``miou``, ``n_train_images``
        (real images, or kept samples), ``fit_seconds``, ``predict_seconds`` (the test images; the
        DDPM rows include the feature extraction of the test images) and ``images_per_second``.
        :func:`synthetic_table` turns it into the paper's table.

    Examples
    --------
    >>> from sklearn_ddpm.studies import synthetic_data_study, synthetic_table
    >>> runs = synthetic_data_study(X_train, y_train, X_test, y_test, sample_dir="samples/",
    ...                             n_samples=500, dataset="horse")  # doctest: +SKIP
    >>> synthetic_table(runs)  # doctest: +SKIP
    """
    from ..synthetic import SegmentationNetworkClassifier, label_samples, sample_images

    pd = require_pandas()
    X_train, y_train, X_test, y_test = (as_list(a) for a in (X_train, y_train, X_test, y_test))
    if n_classes is None:
        n_classes = n_classes_of(y_train + y_test)
    params = dict(transformer_params or {})
    params.setdefault("memory", ActivationCache())
    transformer = make_transformer(model, blocks, steps, params)
    sample_dir = Path(sample_dir)
    sample_paths = sample_images(sample_dir, n_samples, transformer.backbone_, progress=progress,
                                 **(sampling_params or {}))
    if network is None:
        network = SegmentationNetworkClassifier(image_size=max(transformer.backbone_.image_size), n_classes=n_classes)
    train_features = transformer.transform(X_train)
    test_features = transformer.transform(X_test)
    # What predicting costs with DDPM features: the extraction without a cache to serve it.
    extract_seconds, _ = _timed(clone(transformer).set_params(memory=None).fit().transform, X_test)

    rows = []

    def record(method, seed, n_images, fit_seconds, predict_seconds, predictions):
        miou = mean_iou(per_class_iou(y_test, list(predictions), n_classes=n_classes))
        rows.append(dict(dataset=dataset, method=method, seed=int(seed), miou=miou, n_train_images=int(n_images),
                         fit_seconds=fit_seconds, predict_seconds=predict_seconds,
                         images_per_second=len(X_test) / predict_seconds))

    for seed in tqdm(seeds, desc=f"synthetic study ({dataset})", disable=not progress):
        real = study_classifier(classifier, seed, n_classes)
        fit_seconds, _ = _timed(real.fit, train_features, y_train)
        predict_seconds, predictions = _timed(real.predict, test_features)
        record(SYNTHETIC_METHODS[0], seed, len(X_train), fit_seconds, extract_seconds + predict_seconds, predictions)

        pseudo = label_samples(Pipeline([("features", transformer), ("clf", real)]), sample_dir,
                               sample_dir / f"pseudo_labels_seed{seed}", drop_fraction=drop_fraction,
                               drop_most_certain=drop_most_certain, progress=progress)
        images, masks = pseudo.load(kept_only=True)
        synthetic = study_classifier(synthetic_classifier if synthetic_classifier is not None else classifier,
                                     seed, n_classes)
        fit_seconds, _ = _timed(synthetic.fit, transformer.transform(images), masks)
        predict_seconds, predictions = _timed(synthetic.predict, test_features)
        record(SYNTHETIC_METHODS[1], seed, len(images), fit_seconds, extract_seconds + predict_seconds, predictions)

        net = clone(network).set_params(random_state=seed)
        fit_seconds, _ = _timed(net.fit, images, masks)
        predict_seconds, predictions = _timed(net.predict, X_test)
        record(SYNTHETIC_METHODS[2], seed, len(images), fit_seconds, predict_seconds, predictions)
    runs = pd.DataFrame(rows)
    runs.attrs["n_samples"] = len(sample_paths)
    return runs


def synthetic_table(runs, digits=1):
    """The paper's Table 3 layout: one row per method, one column per dataset, "mean ± std" mIoU (%).

    ``std`` is the sample standard deviation (ddof=1) over the seeds; a single seed shows the mean.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`synthetic_data_study` (one dataset, or several concatenated).
    digits : int, default=1

    Returns
    -------
    pandas.DataFrame
    """
    pd = require_pandas()

    def cell(scores):
        scores = 100 * scores
        if len(scores) < 2:
            return f"{scores.mean():.{digits}f}"
        return f"{scores.mean():.{digits}f} ± {scores.std(ddof=1):.{digits}f}"

    table = runs.groupby(["method", "dataset"], sort=False).miou.apply(cell).unstack("dataset")
    order = [m for m in SYNTHETIC_METHODS if m in table.index]
    return pd.DataFrame(table.loc[order])


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result
