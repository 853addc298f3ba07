"""Stochastic feature extraction: how the noise used to noise the images matters (paper, Table 5)."""

from tqdm.auto import tqdm

from ._common import as_list, evaluate, make_transformer, n_classes_of, require_pandas, study_classifier

#: The paper's variants: one fixed noise for all steps, a fresh noise per step, and features
#: averaged over several noise draws.
NOISE_VARIANTS = {
    "shared noise": {"noise": "shared"},
    "per-step noise": {"noise": "per_step"},
    "mean of 5 draws": {"noise": "shared", "n_noise_samples": 5},
}


def noise_study(X_train, y_train, X_test, y_test, *, variants=None, seeds=(0, 1, 2), model=None, blocks="auto",
                steps=(50, 150, 250), classifier=None, transformer_params=None, n_classes=None, progress=True):
    """mIoU of the same pipeline under different noise policies of :class:`DDPMFeatureTransformer`.

    Every seed draws new noise (the transformer's ``random_state``) and seeds the classifier,
    so the spread over seeds is the spread over noise draws the paper's Table 5 discusses.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : images and label maps
    variants : dict of str to dict, default=None
        Name → transformer parameters (``noise``, ``n_noise_samples``); :data:`NOISE_VARIANTS`
        by default.
    seeds : tuple of int, default=(0, 1, 2)
    model, blocks, steps, transformer_params :
        Feature extraction (None = bundled horse DDPM).
    classifier : estimator, default=None
        Cloned and seeded per run; a small :class:`MLPEnsembleClassifier` by default.
    n_classes : int, default=None
    progress : bool, default=True

    Returns
    -------
    pandas.DataFrame
        One row per run: ``variant``, ``seed``, ``noise``, ``n_noise_samples``, ``miou``;
        ``df.groupby("variant", sort=False).miou.agg(["mean", "std"])`` is the table.

    Examples
    --------
    >>> from sklearn_ddpm.studies import noise_study
    >>> runs = noise_study(X_train, y_train, X_test, y_test, seeds=(0, 1))  # doctest: +SKIP
    >>> runs.groupby("variant", sort=False).miou.agg(["mean", "std"])  # doctest: +SKIP
    """
    pd = require_pandas()
    X_train, y_train, X_test, y_test = (as_list(a) for a in (X_train, y_train, X_test, y_test))
    variants = dict(NOISE_VARIANTS if variants is None else variants)
    if n_classes is None:
        n_classes = n_classes_of(y_train + y_test)
    backbone = None
    rows = []
    runs = tqdm(total=len(variants) * len(seeds), desc="noise variants", disable=not progress)
    for name, overrides in variants.items():
        for seed in seeds:
            params = {**(transformer_params or {}), **overrides, "random_state": seed}
            transformer = make_transformer(backbone if backbone is not None else model, blocks, steps, params)
            backbone = transformer.backbone_  # load the checkpoint once
            miou, _ = evaluate(study_classifier(classifier, seed, n_classes), transformer.transform(X_train), y_train,
                               transformer.transform(X_test), y_test, n_classes)
            rows.append(dict(variant=name, seed=int(seed), noise=transformer.noise,
                             n_noise_samples=transformer.n_noise_samples, miou=miou))
            runs.update()
    runs.close()
    return pd.DataFrame(rows)
