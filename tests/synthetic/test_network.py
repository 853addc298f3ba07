"""SegmentationNetworkClassifier: images in, label maps out, mIoU score, pickling, sklearn conventions."""

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_parameters_default_constructible, check_set_params)

from sklearn_ddpm.synthetic import SegmentationNetworkClassifier
from tests.conftest import make_squares

TINY = dict(image_size=32, block_out_channels=(8, 16), max_epochs=2, batch_size=4, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    images, masks = make_squares(n_images=8, size=(32, 32), seed=0)
    return SegmentationNetworkClassifier(**{**TINY, "max_epochs": 15}).fit(images, masks), images, masks


def test_fit_predict_shapes_and_score(fitted):
    net, images, masks = fitted
    assert net.predict(images).shape == (8, 32, 32)
    assert set(np.unique(net.predict(images))) <= {0, 1}
    # label maps at each image's own size, whatever the network's input size
    odd = [images[0], np.ascontiguousarray(np.resize(images[1], (45, 27, 3)))]
    labels = net.predict(odd)
    assert [m.shape for m in labels] == [(32, 32), (45, 27)]
    proba = net.predict_proba(images[:2])
    assert proba.shape == (2, 32, 32, 2) and np.allclose(proba.sum(-1), 1, atol=1e-5)
    # it has learnt the bright squares: far above predicting all background (mIoU about 0.45 here)
    assert net.score(images, masks) > 0.7


def test_same_seed_same_network(fitted):
    net, images, masks = fitted
    again = clone(net).fit(images, masks)
    assert np.array_equal(again.predict(images), net.predict(images))


def test_joblib_round_trip(fitted, tmp_path):
    net, images, _ = fitted
    joblib.dump(net, tmp_path / "net.joblib")
    loaded = joblib.load(tmp_path / "net.joblib")
    assert np.array_equal(loaded.predict(images), net.predict(images))
    assert loaded.n_parameters_ == net.n_parameters_


def test_ignored_pixels_and_fixed_classes():
    images, masks = make_squares(n_images=4, size=(32, 32), seed=1)
    masks = masks.copy()
    masks[:, :4] = 255
    net = SegmentationNetworkClassifier(**TINY, n_classes=3).fit(images, masks)
    assert net.classes_.tolist() == [0, 1, 2]
    assert 0 <= net.score(images, masks) <= 1
    with pytest.raises(ValueError, match="n_classes=2"):
        SegmentationNetworkClassifier(**TINY, n_classes=2).fit(images, masks * 0 + 2)


@pytest.mark.parametrize("params, match", [
    (dict(image_size=34, block_out_channels=(8, 16, 16)), "multiple of 4"),
    (dict(block_out_channels=(8, 12)), "multiples of 8"),
    (dict(max_epochs=0), "max_epochs"),
])
def test_bad_parameters(params, match):
    images, masks = make_squares(n_images=2, size=(32, 32))
    with pytest.raises(ValueError, match=match):
        SegmentationNetworkClassifier(**{**TINY, **params}).fit(images, masks)
    with pytest.raises(ValueError, match="at least two"):
        SegmentationNetworkClassifier(**TINY).fit(images, masks * 0)


@pytest.mark.parametrize("check", [check_parameters_default_constructible, check_no_attributes_set_in_init,
                                   check_get_params_invariance, check_set_params])
def test_sklearn_conventions(check):
    check("SegmentationNetworkClassifier", SegmentationNetworkClassifier())


def test_gpu_fitted_network_loads_and_predicts_on_a_cpu(fitted, monkeypatch, tmp_path):
    """A file saved from a CUDA fit (simulated: devices set to "cuda") loads and predicts on a CPU-only machine."""
    import copy

    import torch

    net, images, _ = fitted
    gpu_like = copy.deepcopy(net).set_params(device="cuda")
    gpu_like.net_.device = "cuda"
    joblib.dump(gpu_like, tmp_path / "gpu.joblib")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning):  # skorch: the CUDA net is mapped to the CPU
        loaded = joblib.load(tmp_path / "gpu.joblib")
    assert str(loaded.net_.device) == "cpu"
    with pytest.warns(UserWarning, match="CUDA is not available"):
        labels = loaded.predict(images)
    assert np.array_equal(labels, net.predict(images))
