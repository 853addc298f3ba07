"""mIoU as a function of the number of labelled images (paper, Table 4)."""

from tqdm.auto import tqdm

from ._common import as_list, evaluate, make_transformer, n_classes_of, require_pandas, study_classifier


def sample_efficiency(X_pool, y_pool, X_test, y_test, *, n_labeled=(1, 2, 5, 10), seeds=(0, 1, 2), subsets="random",
                      model=None, blocks="auto", steps=(50, 150, 250), classifier=None, transformer_params=None,
                      n_classes=None, progress=True):
    """Train on ``n`` labelled images for each ``n`` in ``n_labeled`` and several seeds; score on the test set.

    Features of the pool and the test images are computed once; each run draws its labelled images
    from the pool and trains a fresh classifier.

    Parameters
    ----------
    X_pool, y_pool : images and label maps
        The labelled images runs draw from.
    X_test, y_test : images and label maps
        Evaluation images.
    n_labeled : tuple of int, default=(1, 2, 5, 10)
        Numbers of labelled images; each must be at most ``len(X_pool)``.
    seeds : tuple of int, default=(0, 1, 2)
        One run per seed (classifier seed and, with ``subsets="random"``, image draw).
    subsets : {"random", "first"}, default="random"
        "random": each seed draws its own ``n`` images; "first": the first ``n`` pool images
        for every seed (only the classifier's seed varies), as with an ordered labelled pool.
    model, blocks, steps, transformer_params :
        Feature extraction, see :class:`DDPMFeatureTransformer` (None = bundled horse DDPM).
    classifier : estimator, default=None
        Cloned and seeded per run; the default is a small :class:`MLPEnsembleClassifier`.
    n_classes : int, default=None
    progress : bool, default=True

    Returns
    -------
    pandas.DataFrame
        One row per run: ``n_labeled``, ``seed``, ``images`` (pool indices used), ``miou``.
        ``df.groupby("n_labeled").miou.agg(["mean", "std"])`` gives the table;
        :func:`plot_sample_efficiency` the figure.

    Examples
    --------
    >>> from sklearn_ddpm.studies import sample_efficiency, plot_sample_efficiency
    >>> runs = sample_efficiency(X_pool, y_pool, X_test, y_test, n_labeled=(1, 5))  # doctest: +SKIP
    >>> runs.groupby("n_labeled").miou.agg(["mean", "std"])  # doctest: +SKIP
    """
    import numpy as np

    pd = require_pandas()
    X_pool, y_pool, X_test, y_test = (as_list(a) for a in (X_pool, y_pool, X_test, y_test))
    if subsets not in ("random", "first"):
        raise ValueError(f"subsets must be 'random' or 'first', got {subsets!r}.")
    too_many = [n for n in n_labeled if not 1 <= n <= len(X_pool)]
    if too_many:
        raise ValueError(f"n_labeled {too_many} must be between 1 and the pool size {len(X_pool)}.")
    if n_classes is None:
        n_classes = n_classes_of(y_pool + y_test)
    transformer = make_transformer(model, blocks, steps, transformer_params)
    pool_features = transformer.transform(X_pool)
    test_features = transformer.transform(X_test)
    rows = []
    runs = tqdm(total=len(n_labeled) * len(seeds), desc="sample efficiency", disable=not progress)
    for n in n_labeled:
        for seed in seeds:
            if subsets == "random":
                chosen = np.sort(np.random.default_rng([int(seed), int(n)]).choice(len(X_pool), n, replace=False))
            else:
                chosen = np.arange(n)
            clf = study_classifier(classifier, seed, n_classes)
            miou, _ = evaluate(clf, pool_features[chosen], [y_pool[i] for i in chosen], test_features, y_test,
                               n_classes)
            rows.append(dict(n_labeled=int(n), seed=int(seed), images=chosen.tolist(), miou=miou))
            runs.update()
    runs.close()
    return pd.DataFrame(rows)
