"""Robustness of the segmenter to common image corruptions (paper, Fig. 6).

The corruptions and their five severities follow Hendrycks & Dietterich, "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations" (ICLR 2019), ImageNet-C code
(``make_imagenet_c.py``): the same formulas and severity constants, written with NumPy, SciPy and
Pillow. (The ``imagecorruptions`` package implements them too, but pulls in OpenCV and has not
been released since 2020.) The constants were tuned for 224-pixel images; on larger images the
blur is relatively milder.
"""

import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from ._common import as_list, evaluate, make_transformer, n_classes_of, require_pandas, study_classifier

# ImageNet-C severity constants, severity 1..5.
_GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)  # on [0, 1] intensities
_BLUR_SIGMA = (1, 2, 3, 4, 6)  # pixels
_JPEG_QUALITY = (25, 18, 15, 10, 7)
_CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
_BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "jpeg", "contrast", "brightness")


def corrupt(image, corruption, severity, random_state=None):
    """Apply one corruption at severity 1-5 (0 returns the image unchanged).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    corruption : {"gaussian_noise", "gaussian_blur", "jpeg", "contrast", "brightness"}
    severity : int in 0..5
    random_state : int, Generator or None
        Seed of the Gaussian noise.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.studies import corrupt
    >>> image = np.full((8, 8, 3), 128, np.uint8)
    >>> int(corrupt(image, "brightness", 5)[0, 0, 0])
    255
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}.")
    if not 0 <= int(severity) <= 5:
        raise ValueError(f"severity must be 0 (clean) to 5, got {severity}.")
    image = np.asarray(image, dtype=np.uint8)
    if severity == 0:
        return image.copy()
    k = int(severity) - 1
    x = image.astype(np.float64) / 255.0
    if corruption == "gaussian_noise":
        x = x + np.random.default_rng(random_state).normal(scale=_GAUSSIAN_NOISE_STD[k], size=x.shape)
    elif corruption == "gaussian_blur":
        x = gaussian_filter(x, sigma=(_BLUR_SIGMA[k], _BLUR_SIGMA[k], 0))
    elif corruption == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=_JPEG_QUALITY[k])
        return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8).copy()
    elif corruption == "contrast":
        means = x.mean(axis=(0, 1), keepdims=True)
        x = (x - means) * _CONTRAST_FACTOR[k] + means
    else:  # brightness: V += c in HSV; with H and S fixed, RGB scales with V
        value = x.max(axis=-1, keepdims=True)
        new_value = np.clip(value + _BRIGHTNESS_SHIFT[k], 0, 1)
        x = np.where(value > 0, x * new_value / np.maximum(value, 1e-12), new_value)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def corruption_study(X_train, y_train, X_test, y_test, *, corruptions=CORRUPTIONS, severities=(1, 2, 3, 4, 5),
                     model=None, blocks="auto", steps=(50, 150, 250), classifier=None, transformer_params=None,
                     n_classes=None, random_state=0, progress=True):
    """mIoU on corrupted test images of a segmenter trained on clean images.

    The classifier is trained once on the clean training images; the test images are then
    corrupted with every corruption at every severity, and scored against their (unchanged) masks.
    Severity 0 (clean test images) is the reference row of every corruption.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : images and label maps
    corruptions : tuple of str, default=CORRUPTIONS
    severities : tuple of int, default=(1, 2, 3, 4, 5)
    model, blocks, steps, transformer_params :
        Feature extraction (None = bundled horse DDPM).
    classifier : estimator, default=None
        A small :class:`MLPEnsembleClassifier` by default.
    n_classes : int, default=None
    random_state : int, default=0
        Seed of the noise, the classifier and the Gaussian-noise corruption.
    progress : bool, default=True

    Returns
    -------
    pandas.DataFrame
        One row per (corruption, severity), severity 0 included: ``corruption``, ``severity``,
        ``miou``. Plot with :func:`plot_corruptions`.

    Examples
    --------
    >>> from sklearn_ddpm.studies import corruption_study, plot_corruptions
    >>> table = corruption_study(X_train, y_train, X_test, y_test, severities=(1, 3, 5))  # doctest: +SKIP
    >>> table.pivot(index="severity", columns="corruption", values="miou")  # doctest: +SKIP
    """
    pd = require_pandas()
    X_train, y_train, X_test, y_test = (as_list(a) for a in (X_train, y_train, X_test, y_test))
    bad = [c for c in corruptions if c not in CORRUPTIONS]
    if bad:
        raise ValueError(f"unknown corruptions {bad}; choose from {CORRUPTIONS}.")
    if n_classes is None:
        n_classes = n_classes_of(y_train + y_test)
    transformer = make_transformer(model, blocks, steps, transformer_params, random_state)
    clf = study_classifier(classifier, random_state, n_classes)
    clean_miou, _ = evaluate(clf, transformer.transform(X_train), y_train, transformer.transform(X_test), y_test,
                             n_classes)
    rows = [dict(corruption=c, severity=0, miou=clean_miou) for c in corruptions]
    ignore = getattr(clf, "ignore_index", 255)
    from ..metrics import miou_score

    bar = tqdm(total=len(corruptions) * len(severities), desc="corruptions", disable=not progress)
    for c_index, name in enumerate(corruptions):
        for severity in severities:
            seeds = np.random.SeedSequence([int(random_state), c_index, int(severity)]).spawn(len(X_test))
            corrupted = [corrupt(image, name, severity, np.random.default_rng(s)) for image, s in zip(X_test, seeds)]
            predictions = clf.predict(transformer.transform(corrupted))
            miou = miou_score(y_test, list(predictions), ignore_index=ignore, n_classes=n_classes)
            rows.append(dict(corruption=name, severity=int(severity), miou=miou))
            bar.update()
    bar.close()
    return pd.DataFrame(rows)
