"""Candidates that differ only in prediction-time parameters share one fit per fold, at the same scores."""

import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from sklearn_ddpm import DDPMFeatureTransformer, GuidedFilter, MLPEnsembleClassifier, make_segmenter
from sklearn_ddpm.model_selection import select_segmenter
from sklearn_ddpm.model_selection._shared_fits import _FitMemo, _FitSharing, is_prediction_param
from sklearn_ddpm.model_selection._staged import _StagedSearchCV
from tests.conftest import make_squares

FAST = {"n_estimators": 2, "max_epochs": 10, "max_pixels_per_image": 200}
# flip averaging x voting x refinement: 2 x 2 + 2 x 2 guided = 8 candidates, one fit-time setting
LEVERS = [{"features__flip_tta": [False, True], "clf__voting": ["hard", "soft"]},
          {"features__flip_tta": [False, True],
           "clf__refine": [GuidedFilter(radius=2), GuidedFilter(radius=4, eps=0.1)]}]


@pytest.fixture(scope="module")
def data():
    images, masks = make_squares(4, (32, 32))
    return list(images), list(masks)


def _count_fits(monkeypatch):
    fits = []
    fit = MLPEnsembleClassifier.fit

    def counted(self, X, y):
        fits.append(1)
        return fit(self, X, y)

    monkeypatch.setattr(MLPEnsembleClassifier, "fit", counted)
    return fits


def _select(images, masks, backbone, search):
    # refine starts at the vote (a keyword would fix it: the stages could not vary it)
    search = {"start": {"clf__refine": None}, "stages": search if isinstance(search, list) else [search]}
    return select_segmenter(images, masks, model=backbone, search=search, budget=None, cv=2, progress=False,
                            refit=False, blocks=(6,), steps=(10,), **FAST)


def test_prediction_time_candidates_share_fits_at_the_scores_of_separate_fits(tiny_backbone, data, monkeypatch):
    images, masks = data
    fits = _count_fits(monkeypatch)
    shared = _select(images, masks, tiny_backbone, [LEVERS])
    assert len(shared.cv_results_["params"]) == 8
    assert len(fits) == 2  # one fit per fold
    assert shared.fits_ == {"fitted": 2, "reused": 14}

    # Without the declarations every candidate is fitted: the same scores, exactly (seeded fits).
    monkeypatch.setattr(MLPEnsembleClassifier, "_prediction_params", ())
    monkeypatch.setattr(DDPMFeatureTransformer, "_prediction_params", ())
    fits.clear()
    separate = _select(images, masks, tiny_backbone, [LEVERS])
    assert len(fits) == 16 and separate.fits_ == {"fitted": 16, "reused": 0}
    assert separate.cv_results_["params"] == shared.cv_results_["params"]
    for k in range(2):
        assert separate.cv_results_[f"split{k}_test_score"] == shared.cv_results_[f"split{k}_test_score"]
    # the levers do change the predictions (a sharing that ignored them would score all alike)
    assert len(set(shared.cv_results_["mean_test_score"])) > 2


def test_fit_time_parameters_are_not_shared(tiny_backbone, data, monkeypatch):
    images, masks = data
    fits = _count_fits(monkeypatch)
    result = _select(images, masks, tiny_backbone, {"clf__standardize": [False, True], "clf__voting": ["hard", "soft"]})
    assert len(result.cv_results_["params"]) == 4
    assert len(fits) == 4  # two fit-time settings x two folds


def test_the_next_stage_shares_the_fits_of_the_best_so_far(tiny_backbone, data, monkeypatch):
    images, masks = data
    fits = _count_fits(monkeypatch)
    # t = 10 wins over t = 999 (noise only) although t = 999 ran last; the vote stage starts from it
    stages = [{"features__steps": [(10,), (999,)]}, {"clf__voting": ["hard", "soft"]}]
    space = {"start": {"clf__refine": None}, "stages": stages}
    result = select_segmenter(images, masks, model=tiny_backbone, search=space, budget=None, cv=2, progress=False,
                              refit=False, blocks=(6,), **FAST)
    assert result.cv_results_["params"][2] == {"features__steps": (10,), "clf__voting": "soft"}
    assert len(fits) == 4 and result.fits_ == {"fitted": 4, "reused": 2}


def test_prediction_params_are_declared_by_the_estimators():
    segmenter = make_segmenter()
    assert is_prediction_param(segmenter, "clf__refine")
    assert is_prediction_param(segmenter, "clf__refine__radius")  # under a declared parameter
    assert is_prediction_param(segmenter, "features__flip_tta")
    assert not is_prediction_param(segmenter, "clf__standardize")
    assert not is_prediction_param(segmenter, "features__steps")
    assert not is_prediction_param(segmenter, "clf")


def test_declared_parameters_do_not_change_the_fit():
    # The declaration is a promise that fit does not read them: same seed, same weights.
    X = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    base = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0)
    reference = clone(base).fit(X, y).net_.module_.state_dict()
    for params in ({"voting": "soft"}, {"refine": GuidedFilter()}, {"predict_batch_size": 7}):
        state = clone(base).set_params(**params).fit(X, y).net_.module_.state_dict()
        for name, tensor in reference.items():
            assert np.array_equal(tensor.numpy(), state[name].numpy()), (params, name)


def test_the_wrapper_is_transparent_and_its_clones_share_the_memo():
    segmenter = make_segmenter(refine=None)
    wrapped = _FitSharing(segmenter, memo=_FitMemo())
    assert wrapped.get_params()["clf__voting"] == "hard"
    copy = clone(wrapped).set_params(clf__voting="soft")
    assert copy.memo is wrapped.memo
    assert copy.estimator.get_params()["clf__voting"] == "soft" and segmenter[-1].voting == "hard"


class _SlowFit(BaseEstimator):
    """Fits in ``seconds`` (a sleep); ``p`` is read only by ``score``."""

    _prediction_params = ("p",)

    def __init__(self, seconds=0.5, c=0, p=0):
        self.seconds, self.c, self.p = seconds, c, p

    def fit(self, X, y):
        time.sleep(self.seconds)
        return self

    def score(self, X, y):
        return -abs(self.p - 3) - self.c


def test_the_budget_expects_candidates_on_shared_fits_to_cost_their_scoring_only():
    X, y = np.arange(8.0)[:, None], np.zeros(8)  # folds of different data: one fit each
    stages = [{"c": [0]}, {"p": list(range(10))}, {"c": [1]}]
    search = _StagedSearchCV(_FitSharing(_SlowFit(0.5), memo=_FitMemo()), stages, cv=2, budget=1.9).fit(X, y)
    params = search.cv_results_["params"]
    # the first candidate fits for 1 s: another of its kind would not fit in the budget, but the
    # candidates that differ in p only are scored on its fits, and run
    assert [p.get("p", 0) for p in params] == list(range(10))  # p=0 is the first candidate
    assert search.candidate_reused_fits_ == [False] + [True] * 9
    assert search.skipped_ == [{"stage": 2, "params": {"p": 3, "c": 1}}]
