"""The product shape: Pipeline, GridSearchCV, joblib, cross-validation by image."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, make_segmenter, miou_score

from .conftest import make_squares


def _pipeline(backbone, **clf_params):
    clf_params = {
        "n_estimators": 2,
        "max_epochs": 3,
        "lr": 1e-2,
        "random_state": 0,
        "max_pixels_per_image": 400,
        **clf_params,
    }
    return Pipeline(
        [
            ("features", DDPMFeatureTransformer(backbone, blocks=(6, 9), steps=(50,), memory=None)),
            ("clf", MLPEnsembleClassifier(**clf_params)),
        ]
    )


def test_fit_predict_score(tiny_backbone):
    images, masks = make_squares(8)
    pipe = _pipeline(tiny_backbone).fit(images[:6], masks[:6])
    pred = pipe.predict(images[6:])
    assert pred.shape == masks[6:].shape
    assert pipe.score(images[6:], masks[6:]) == pytest.approx(miou_score(masks[6:], pred))
    majority = miou_score(masks[6:], np.zeros_like(masks[6:]))
    assert pipe.score(images[6:], masks[6:]) > majority + 0.2


def test_joblib_round_trip_predicts_identically(tiny_backbone, tmp_path):
    images, masks = make_squares(5)
    pipe = _pipeline(tiny_backbone).fit(images[:4], masks[:4])
    joblib.dump(pipe, tmp_path / "seg.joblib")
    loaded = joblib.load(tmp_path / "seg.joblib")
    np.testing.assert_array_equal(loaded.predict(images[4:]), pipe.predict(images[4:]))
    np.testing.assert_array_equal(loaded.predict_proba(images[4:]), pipe.predict_proba(images[4:]))


def test_cuda_fitted_pipeline_predicts_on_cpu_only_machine(tiny_backbone, tmp_path, monkeypatch):
    """A pipeline whose device is "cuda" (weights are stored on the CPU when pickled) predicts on a CPU."""
    import torch

    images, masks = make_squares(5)
    pipe = _pipeline(tiny_backbone).fit(images[:4], masks[:4])
    expected = pipe.predict(images[4:])
    pipe.set_params(features__device="cuda", clf__device="cuda")
    pipe.named_steps["clf"].net_.device = "cuda"
    joblib.dump(pipe, tmp_path / "gpu.joblib")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = joblib.load(tmp_path / "gpu.joblib")
        pred = loaded.predict(images[4:])
    np.testing.assert_array_equal(pred, expected)
    assert any("CUDA" in str(w.message) or "cuda" in str(w.message) for w in caught)


def test_grid_search_over_blocks_steps_and_members(tiny_backbone):
    images, masks = make_squares(6)
    grid = GridSearchCV(
        _pipeline(tiny_backbone),
        {"features__blocks": [(6,), (6, 9)], "features__steps": [(50,), (50, 150)], "clf__n_estimators": [1, 2]},
        cv=2,
    )
    grid.fit(list(images), list(masks))
    assert len(grid.cv_results_["params"]) == 8
    assert 0 <= grid.best_score_ <= 1
    assert grid.predict(images[:1]).shape == (1, 40, 40)


def test_cross_validation_splits_by_image(tiny_backbone):
    """Folds hold whole images: each test fold predicts full label maps of unseen images."""
    images, masks = make_squares(6)
    seen = []

    class Spy(MLPEnsembleClassifier):
        def fit(self, X, y):
            seen.append(("fit", len(X)))
            return super().fit(X, y)

        def score(self, X, y):
            seen.append(("score", len(X), np.shape(y)))
            return super().score(X, y)

    pipe = Pipeline(
        [
            ("features", DDPMFeatureTransformer(tiny_backbone, blocks=(6,), steps=(50,))),
            ("clf", Spy(n_estimators=1, max_epochs=1, max_pixels_per_image=50)),
        ]
    )
    scores = cross_val_score(pipe, images, masks, cv=KFold(3))
    assert len(scores) == 3
    assert [s for s in seen if s[0] == "fit"] == [("fit", 4)] * 3
    assert [s for s in seen if s[0] == "score"] == [("score", 2, (2, 40, 40))] * 3
    groups = [0, 0, 1, 1, 2, 2]
    assert len(cross_val_score(pipe, list(images), list(masks), cv=GroupKFold(3), groups=groups)) == 3


def test_unfitted_pipeline_raises(tiny_backbone):
    with pytest.raises(NotFittedError):
        _pipeline(tiny_backbone).predict(make_squares(1)[0])


def test_make_segmenter_mlp_batch_size_is_the_classifiers_batch():
    assert make_segmenter().named_steps["clf"].batch_size == 256
    assert make_segmenter(mlp_batch_size=64).named_steps["clf"].batch_size == 64
