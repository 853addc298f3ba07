import matplotlib.pyplot as plt
import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer, miou_score
from sklearn_ddpm.studies import CORRUPTIONS, corrupt, corruption_study, plot_corruptions


@pytest.fixture
def photo():
    # A smooth gradient with an edge: every corruption has something to change.
    y, x = np.mgrid[0:40, 0:48]
    image = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).clip(30, 220).astype(np.uint8)
    image[10:30, 20:30] = 200
    return image


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruptions_grow_with_severity(photo, name):
    assert np.array_equal(corrupt(photo, name, 0), photo)
    changes = []
    for severity in range(1, 6):
        out = corrupt(photo, name, severity, random_state=0)
        assert out.shape == photo.shape and out.dtype == np.uint8
        changes.append(np.abs(out.astype(float) - photo).mean())
    assert changes[0] > 0
    assert changes[-1] > changes[0]
    assert np.array_equal(corrupt(photo, name, 3, random_state=1), corrupt(photo, name, 3, random_state=1))


def test_corruption_formulas(photo):
    # contrast: pulled towards the channel means by the factor (0.05 at severity 5)
    out = corrupt(photo, "contrast", 5).astype(float)
    np.testing.assert_allclose(out.std(axis=(0, 1)), 0.05 * photo.std(axis=(0, 1)), atol=0.6)
    # brightness: the HSV value grows by 0.1 at severity 1, hue and saturation kept
    out = corrupt(photo, "brightness", 1).astype(float)
    np.testing.assert_allclose(out.max(-1), np.minimum(photo.max(-1) + 25.5, 255), atol=1)
    # gaussian noise: std 0.08 of the range at severity 1 (photo is away from the clipping range)
    out = corrupt(photo, "gaussian_noise", 1, random_state=0).astype(float)
    assert (out - photo).std() == pytest.approx(0.08 * 255, rel=0.1)


def test_corruption_arguments(photo):
    with pytest.raises(ValueError, match="corruption must be one of"):
        corrupt(photo, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(photo, "jpeg", 6)


def test_corruption_study_bookkeeping(toy_data, unet, small_classifier):
    X_train, y_train, X_test, y_test = toy_data
    table = corruption_study(X_train[:2], y_train[:2], X_test, y_test, corruptions=("contrast", "jpeg"),
                             severities=(5,), model=unet, blocks=(6,), steps=(50,), classifier=small_classifier,
                             random_state=2, progress=False)
    assert table[["corruption", "severity"]].values.tolist() == [["contrast", 0], ["jpeg", 0], ["contrast", 5],
                                                                 ["jpeg", 5]]
    transformer = DDPMFeatureTransformer(unet, blocks=(6,), steps=(50,), memory=None, random_state=2).fit()
    clf = small_classifier.set_params(random_state=2, n_classes=3).fit(transformer.transform(X_train[:2]), y_train[:2])
    clean = miou_score(y_test, clf.predict(transformer.transform(X_test)), n_classes=3)
    faded = miou_score(y_test, clf.predict(transformer.transform([corrupt(x, "contrast", 5) for x in X_test])),
                       n_classes=3)
    assert table.miou[0] == table.miou[1] == pytest.approx(clean, abs=1e-9)
    assert table.miou[2] == pytest.approx(faded, abs=1e-9)

    fig = plot_corruptions(table)
    assert fig.axes[0].get_xlabel() == "severity (0 = clean)"
    plt.close(fig)
