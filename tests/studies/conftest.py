import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


def _toy_images(n, seed, size=24):
    """Random images whose three classes differ in brightness, so a classifier has signal."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), np.int64)
    masks[:, 4:14, 6:20] = 1  # large-ish class
    masks[:, 16:20, 2:8] = 2  # small class
    images[masks == 1] //= 3
    images[masks == 2] = 255 - images[masks == 2] // 4
    return list(images), list(masks)


@pytest.fixture(scope="session")
def toy_data():
    X_train, y_train = _toy_images(3, 0)
    X_test, y_test = _toy_images(2, 1)
    return X_train, y_train, X_test, y_test


@pytest.fixture(scope="session")
def unet():
    from sklearn_ddpm.backbone import tiny_unet

    return tiny_unet()


@pytest.fixture
def small_classifier():
    from sklearn_ddpm import MLPEnsembleClassifier

    return MLPEnsembleClassifier(n_estimators=2, max_epochs=2, max_pixels_per_image=150, batch_size=64)
