"""``MLPEnsembleClassifier(autocast_dtype=...)``: the members train under autocast; the default is float32 as before."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNet

from sklearn_ddpm import MLPEnsembleClassifier
from sklearn_ddpm.ensemble import _classifier, _module, _net
from sklearn_ddpm.io import dumps_model, loads_model


def _data():
    X, y = make_classification(n_samples=400, n_features=30, n_informative=8, n_classes=3, random_state=0)
    return X.astype(np.float32), y


def _fit(**params):
    X, y = _data()
    return MLPEnsembleClassifier(n_estimators=3, max_epochs=4, random_state=0, **params).fit(X, y)


def _spy_matmuls(monkeypatch):
    """Record, for every training forward pass, whether autocast was on and its matmuls' result types."""
    forward, matmul = _module.BatchedMLPEnsemble.forward, torch.matmul
    seen = []

    def spied(self, x):
        if not self.training:
            return forward(self, x)
        types = []

        def recorded(*args, **kwargs):
            out = matmul(*args, **kwargs)
            types.append(out.dtype)
            return out

        monkeypatch.setattr(torch, "matmul", recorded)
        try:
            out = forward(self, x)
        finally:
            monkeypatch.setattr(torch, "matmul", matmul)
        seen.append((torch.is_autocast_enabled("cpu"), set(types)))
        return out

    monkeypatch.setattr(_module.BatchedMLPEnsemble, "forward", spied)
    return seen


def _parameters(clf):
    return [p.detach().clone() for p in clf.net_.module_.state_dict().values()]


def test_bfloat16_autocast_trains_in_bfloat16_and_predicts_finite(monkeypatch):
    seen = _spy_matmuls(monkeypatch)
    clf = _fit(autocast_dtype="bfloat16")
    # every layer's matmul in bfloat16 (the bias adds, ReLU and BatchNorm promote back to float32)
    assert seen and all(on and types == {torch.bfloat16} for on, types in seen)
    assert clf.autocast_dtype_ == "bfloat16"
    # the weights (and so Adam's update) stay float32
    assert all(p.dtype == torch.float32 for p in clf.net_.module_.parameters())
    X, y = _data()
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32 and np.isfinite(proba).all()
    assert np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (clf.predict(X) == y).mean() > 0.7  # it learned (make_classification: about 0.9 in float32)


def test_default_trains_in_plain_float32_as_skorch_would(monkeypatch):
    seen = _spy_matmuls(monkeypatch)
    clf = _fit()
    assert clf.autocast_dtype_ is None and clf.net_.autocast_dtype is None
    assert seen and all(not on and types == {torch.float32} for on, types in seen)
    # bit for bit the fit of skorch's own infer: the hook does nothing by default
    monkeypatch.setattr(_net.EnsembleNet, "infer", NeuralNet.infer)
    plain = _fit()
    assert all(torch.equal(a, b) for a, b in zip(_parameters(clf), _parameters(plain)))


def test_bfloat16_feature_storage_gives_the_same_members(monkeypatch):
    """Under bfloat16 autocast the first matmul casts its input anyway: storing it as bfloat16 changes no number."""
    stored = []
    dataset = _net.MemberPixelDataset

    def recording(*args, **kwargs):
        made = dataset(*args, **kwargs)
        stored.append(made.features.dtype)
        return made

    monkeypatch.setattr(_classifier, "MemberPixelDataset", recording)
    clf = _fit(autocast_dtype="bfloat16")
    assert stored == [torch.bfloat16]

    def float32_storage(*args, **kwargs):
        return dataset(*args, **{**kwargs, "dtype": torch.float32})

    monkeypatch.setattr(_classifier, "MemberPixelDataset", float32_storage)
    same = _fit(autocast_dtype="bfloat16")
    assert all(torch.equal(a, b) for a, b in zip(_parameters(clf), _parameters(same)))


def test_autocast_fit_saves_and_loads_in_the_safe_format():
    clf = _fit(autocast_dtype="bfloat16")
    loaded = loads_model(dumps_model(clf))
    assert loaded.autocast_dtype == "bfloat16" and loaded.net_.autocast_dtype == "bfloat16"
    X, _ = _data()
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_autocast_dtype_is_validated():
    X, y = _data()
    with pytest.raises(ValueError, match="autocast_dtype"):
        MLPEnsembleClassifier(autocast_dtype="int8").fit(X, y)
