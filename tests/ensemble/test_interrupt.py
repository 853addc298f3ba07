"""Ctrl-C during training stops ``fit`` (skorch would end it quietly and report a normal end)."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError

from sklearn_ddpm import MLPEnsembleClassifier
from sklearn_ddpm.ensemble import _module


def _interrupt_on_call(monkeypatch, call):
    """Make the ensemble's ``call``-th training forward pass raise KeyboardInterrupt, as a Ctrl-C would."""
    forward = _module.BatchedMLPEnsemble.forward
    calls = []

    def interrupted(self, x):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return forward(self, x)

    monkeypatch.setattr(_module.BatchedMLPEnsemble, "forward", interrupted)
    return calls


@pytest.mark.parametrize("batched", [True, False])
def test_fit_reraises_keyboard_interrupt_and_is_not_fitted(monkeypatch, batched):
    X, y = make_classification(n_samples=300, random_state=0)
    calls = _interrupt_on_call(monkeypatch, call=3)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=5, batched=batched, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert len(calls) == 3  # training stopped at the interrupt, not after it
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_early_stop_still_ends_fit_normally():
    """The reference early stop also ends training through skorch's KeyboardInterrupt path."""
    X, y = make_classification(n_samples=400, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=50, patience=1, min_epochs=1, random_state=0).fit(X, y)
    assert all(epoch is not None and epoch < 49 for epoch in clf.stop_epochs_)
    assert clf.predict(X).shape == (400,)


def test_segmentation_network_fit_reraises_keyboard_interrupt(monkeypatch):
    from sklearn_ddpm.synthetic import SegmentationNetworkClassifier
    from sklearn_ddpm.synthetic import _network

    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(_network.SegmentationUNet, "forward", interrupted)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    masks = rng.integers(0, 2, (2, 16, 16))
    clf = SegmentationNetworkClassifier(image_size=16, max_epochs=2, block_out_channels=(8, 16), random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(images, masks)
    assert not hasattr(clf, "net_")


def test_progress_bar_over_epochs_shows_the_early_stop(capsys):
    X, y = make_classification(n_samples=300, random_state=0)
    MLPEnsembleClassifier(n_estimators=3, max_epochs=6, patience=1, min_epochs=1, progress=True,
                          random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "Training pixel MLPs" in err and "epoch" in err
    assert "stopped=3/3 members" in err  # the early stop's state, at the end
    assert "batch=5/5" in err  # 300 pixels at batch 64


def test_a_fit_with_progress_saves_in_the_safe_format(tmp_path):
    """The bar's terminal handle must not stay in the fitted net (the safe format refused it)."""
    from sklearn_ddpm.io import load_model, save_model

    X, y = make_classification(n_samples=200, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, progress=True, random_state=0).fit(X, y)
    save_model(clf, tmp_path / "clf.skddpm")
    np.testing.assert_array_equal(load_model(tmp_path / "clf.skddpm").predict(X), clf.predict(X))


def test_default_samples_at_most_500_pixels_per_class_and_image():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 40, 40, 3)).astype(np.float32)
    masks = np.zeros((2, 40, 40), int)
    masks[:, :10] = 1  # class 1: 400 pixels per image, class 0: 1,200
    features[..., 0] += masks
    clf = MLPEnsembleClassifier(n_estimators=1, max_epochs=1, random_state=0).fit(features, masks)
    assert clf.n_training_pixels_ == 2 * (500 + 400)
