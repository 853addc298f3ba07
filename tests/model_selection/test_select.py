"""select_segmenter: the CV choice, the refit, the budget, the table and the progress bar."""

import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupKFold, cross_val_score

from sklearn_ddpm import GuidedFilter, make_segmenter
from sklearn_ddpm.features import ActivationCache
from sklearn_ddpm.model_selection import (
    SEARCH_PRESETS, default_cv, parse_budget, resolve_search, select_segmenter,
)
from sklearn_ddpm.model_selection._staged import _StagedSearchCV
from tests.conftest import make_squares

# Small and fast: 1-member ensembles, 10 epochs of 200 pixels per image, 2 folds of 2 images.
FAST = {"n_estimators": 1, "max_epochs": 10, "max_pixels_per_image": 200, "refine": None}


@pytest.fixture(scope="module")
def data():
    images, masks = make_squares(4, (32, 32))
    return list(images), list(masks)


def test_the_best_cv_candidate_wins_and_is_refitted(tiny_backbone, data):
    images, masks = data
    # At t = 999 the UNet sees noise only, so its features cannot find the square: t = 10 must win,
    # although it comes second (a search that kept its first candidate would fail here).
    grid = {"features__steps": [(999,), (10,)]}
    result = select_segmenter(images, masks, model=tiny_backbone, search=grid, budget=None, cv=2, progress=False,
                              blocks=(6,), **FAST)
    scores = result.cv_results_["mean_test_score"]
    assert len(scores) == 2
    assert scores[1] > scores[0] + 0.1, scores
    assert result.best_params_ == {"features__steps": (10,)}
    assert result.best_score_ == max(scores)
    # The table's scores are plain GroupKFold scores of that pipeline.
    pipe = make_segmenter(tiny_backbone, blocks=(6,), steps=(10,), batch_size=1, **FAST)  # the search's passes
    expected = cross_val_score(pipe, images, masks, groups=np.arange(4), cv=GroupKFold(2))
    np.testing.assert_allclose(result.cv_results_["split0_test_score"][1], expected[0], atol=1e-6)
    # Refitted on all images with the chosen settings, without the search's cache.
    seg = result.segmenter_
    assert seg[0].steps == (10,) and seg[0].steps_ == (10,)
    assert seg[0].memory is None and seg[0].batch_size == "auto"
    assert seg[-1].n_training_pixels_ == 4 * 200  # every image, at the pixel cap
    assert seg.predict(images[:1])[0].shape == masks[0].shape


def test_stages_run_in_order_from_the_best_so_far(tiny_backbone, data):
    images, masks = data
    stages = [{"features__steps": [(999,), (10,)]}, {"clf__standardize": [False, True]}]
    result = select_segmenter(images, masks, model=tiny_backbone, search=stages, budget=None, cv=2, progress=False,
                              blocks=(6,), **FAST)
    params = result.cv_results_["params"]
    # the default standardize (make_segmenter's) at steps 10 was already run: only the other value is new
    default = make_segmenter()[-1].standardize
    assert result.cv_results_["stage"] == [0, 0, 1]
    assert params[2] == {"features__steps": (10,), "clf__standardize": not default}
    assert result.best_params_["features__steps"] == (10,)


def test_chosen_settings_include_the_start(tiny_backbone, data):
    images, masks = data
    space = {"start": {"clf__max_pixels_per_image": 100}, "proxy": {"clf__n_estimators": 1},
             "stages": [{"clf__standardize": [False, True]}]}
    result = select_segmenter(images, masks, model=tiny_backbone, search=space, budget=None, cv=2, progress=False,
                              blocks=(6,), steps=(10,), n_estimators=2, max_epochs=10, refine=None)
    assert result.best_params_["clf__max_pixels_per_image"] == 100
    assert result.segmenter_[-1].n_training_pixels_ == 4 * 100
    assert result.segmenter_[-1].n_estimators == 2  # the proxy's 1 member was for the search only
    # An explicit keyword wins over the start.
    result = select_segmenter(images, masks, model=tiny_backbone, search=space, budget=None, cv=2, progress=False,
                              blocks=(6,), steps=(10,), n_estimators=2, max_epochs=10, refine=None,
                              max_pixels_per_image=50)
    assert "clf__max_pixels_per_image" not in result.best_params_
    assert result.segmenter_[-1].n_training_pixels_ == 4 * 50


def test_an_explicit_setting_is_not_searched(tiny_backbone, data):
    images, masks = data
    stages = [{"features__steps": [(999,), (10,)], "clf__standardize": [False, True]}]
    result = select_segmenter(images, masks, model=tiny_backbone, search=stages, budget=None, cv=2, progress=False,
                              blocks=(6,), steps=(999,), **FAST)
    assert [p.get("features__steps") for p in result.cv_results_["params"]] == [None, None]
    assert result.segmenter_[0].steps_ == (999,)


def test_one_cache_serves_every_fold_and_candidate(tiny_backbone, data):
    images, masks = data
    cache = ActivationCache()
    select_segmenter(images, masks, model=tiny_backbone, search={"clf__standardize": [False, True]}, budget=None,
                     cv=2, progress=False, memory=cache, blocks=(6,), steps=(10,), **FAST)
    # The UNet ran once per image (one step, one block); every later transform hit the cache.
    assert cache.misses == len(images)
    assert cache.hits > 0


def test_the_budget_stops_the_search_and_the_best_so_far_is_refitted(tiny_backbone, data):
    images, masks = data
    grid = {"features__steps": [(10,), (999,), (50,)]}
    result = select_segmenter(images, masks, model=tiny_backbone, search=grid, budget=0.01, cv=2, progress=False,
                              blocks=(6,), **FAST)
    assert result.stopped_by_budget_
    assert len(result.cv_results_["params"]) == 1  # the first candidate always runs
    assert [s["params"] for s in result.skipped_] == [{"features__steps": (999,)}, {"features__steps": (50,)}]
    assert result.segmenter_[0].steps_ == (10,)


class _Sleeper(BaseEstimator):
    """Fits in ``seconds`` (a sleep: the budget test does not depend on the machine's load)."""

    def __init__(self, seconds=0.05, c=0):
        self.seconds, self.c = seconds, c

    def fit(self, X, y):
        time.sleep(self.seconds)
        return self

    def score(self, X, y):
        return -abs(self.c - 3)


def test_the_search_keeps_within_its_budget():
    X, y = np.zeros((8, 1)), np.zeros(8)
    search = _StagedSearchCV(_Sleeper(0.1), [{"c": list(range(20))}], cv=2, budget=1.0)
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start
    assert search.stopped_by_budget_ and search.skipped_
    assert 2 <= len(search.cv_results_["params"]) < 20
    # A candidate starts only when one of mean length still fits: the overrun is at most one
    # candidate's deviation from the mean (0.2 s of sleep each), whatever the machine's load.
    assert elapsed <= 1.0 + max(search.candidate_seconds_)
    assert sum(search.candidate_seconds_) <= 1.0 + max(search.candidate_seconds_) - min(search.candidate_seconds_)


def test_the_search_reserves_time_for_the_refit():
    X, y = np.zeros((8, 1)), np.zeros(8)
    search = _StagedSearchCV(_Sleeper(0.1), [{"c": list(range(20))}], cv=2, budget=1.0, reserve=lambda fit: 0.6)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) <= 2


def test_progress_bar_shows_the_best_score_and_budget_left(tiny_backbone, data, capsys):
    images, masks = data
    select_segmenter(images, masks, model=tiny_backbone, search={"clf__standardize": [False, True]}, budget="10m",
                     cv=2, progress=True, blocks=(6,), steps=(10,), **FAST)
    err = capsys.readouterr().err
    assert "select" in err and "2/2" in err and "best=" in err and "budget left=" in err


def test_the_table_is_json_and_a_dataframe(tiny_backbone, data, tmp_path):
    import json

    import pandas as pd

    images, masks = data
    result = select_segmenter(images, masks, model=tiny_backbone, search={"clf__refine": [None, GuidedFilter()]},
                              budget=None, cv=2, progress=False, blocks=(6,), steps=(10,),
                              **{k: v for k, v in FAST.items() if k != "refine"})
    frame = pd.DataFrame(result.cv_results_)
    assert len(frame) == 2 and {"mean_test_score", "fold_std_test_score", "seconds"} <= set(frame.columns)
    record = json.loads(result.write_json(tmp_path / "cv.json").read_text())
    assert record["n_splits"] == 2 and record["n_images"] == 4
    assert record["search"]["name"] is None
    assert record["search"]["stages"] == [{"clf__refine": [None, "GuidedFilter()"]}]
    assert len(record["cv_results"]["params"]) == 2
    assert record["seconds"]["total"] >= record["seconds"]["search"]


def test_default_folds_group_whole_images():
    assert [default_cv(n).n_splits for n in (2, 5, 6, 19, 20, 50)] == [2, 5, 5, 5, 4, 4]
    with pytest.raises(ValueError, match="at least 2 labelled images"):
        default_cv(1)


def test_budgets_and_search_spaces_are_checked():
    assert parse_budget("20m") == 1200 and parse_budget("1h30m") == 5400 and parse_budget("90") == 90
    for bad in ("20 minutes", "-5", "0"):
        with pytest.raises(ValueError, match="budget"):
            parse_budget(bad)
    with pytest.raises(ValueError, match="preset"):
        resolve_search("fastest")
    with pytest.raises(ValueError, match="pipeline parameter"):
        resolve_search({"steps": [(10,)]})
    with pytest.raises(ValueError, match="non-empty list"):
        resolve_search({"clf__standardize": True})
    assert set(SEARCH_PRESETS) == {"quick", "default", "full"}


@pytest.mark.parametrize("name", sorted(SEARCH_PRESETS))
def test_presets_hold_valid_parameters(name, tiny_backbone):
    from sklearn.model_selection import ParameterGrid

    from sklearn_ddpm.model_selection._select import _resolve_blocks, _resolve_stage

    space = resolve_search(name)
    pipe = make_segmenter(tiny_backbone)
    pipe.set_params(**_resolve_blocks(space["start"], tiny_backbone), **space["proxy"])
    for stage in space["stages"]:
        for params in ParameterGrid(_resolve_stage(stage, tiny_backbone)):
            pipe.set_params(**params)
            pipe[0]._validate_params()
            pipe[-1]._validate_params()


def test_mismatched_inputs_are_an_error(tiny_backbone, data):
    images, masks = data
    with pytest.raises(ValueError, match="3 masks"):
        select_segmenter(images, masks[:3], model=tiny_backbone)


def test_explicit_splits_and_no_refit(tiny_backbone, data):
    """cv may be an iterable of (train, test) splits (one fold here); refit=False leaves segmenter_ None."""
    images, masks = data
    splits = [(np.array([0, 1, 2]), np.array([3]))]
    result = select_segmenter(images, masks, model=tiny_backbone, search={"clf__max_pixels_per_image": [100, 200]},
                              budget=None, cv=splits, refit=False, progress=False, blocks=(6,), steps=(10,),
                              **{k: v for k, v in FAST.items() if k != "max_pixels_per_image"})
    assert result.segmenter_ is None and result.n_splits_ == 1
    pipe = make_segmenter(tiny_backbone, blocks=(6,), steps=(10,), batch_size=1, **FAST)  # 200 px per image
    expected = pipe.fit([images[i] for i in (0, 1, 2)], [masks[i] for i in (0, 1, 2)]).score([images[3]], [masks[3]])
    np.testing.assert_allclose(result.cv_results_["split0_test_score"][1], expected, atol=1e-6)


class _Sum(BaseEstimator):
    """Scores ``a + b``: which candidates a staged search builds, without fitting anything."""

    def __init__(self, a=0, b=0):
        self.a, self.b = a, b

    def fit(self, X, y):
        return self

    def score(self, X, y):
        return self.a + self.b


def test_the_points_of_a_stage_start_from_the_best_before_it():
    X, y = np.zeros((4, 1)), np.zeros(4)
    # two changes in one stage are alternatives: the second does not build on the first
    search = _StagedSearchCV(_Sum(), [{"a": [0]}, [{"a": [1]}, {"b": [2]}]], cv=2).fit(X, y)
    assert search.cv_results_["params"] == [{"a": 0}, {"a": 1}, {"a": 0, "b": 2}]
    assert search.stage_of_candidate_ == [0, 1, 1]


def test_a_callable_stage_builds_its_grid_from_the_results_so_far():
    X, y = np.zeros((4, 1)), np.zeros(4)
    seen = []

    def combine_gains(history):
        seen.append(history)
        start = max(s for s, k in zip(history["mean_test_score"], history["stage"]) if k == 0)
        gains = [p for p, s, k in zip(history["params"], history["mean_test_score"], history["stage"])
                 if k == 1 and s > start]
        return [{name: [value] for p in gains for name, value in p.items() if name != "a" or value != 0}]

    search = _StagedSearchCV(_Sum(), [{"a": [0]}, [{"a": [1]}, {"b": [2]}], combine_gains, lambda history: []],
                             cv=2).fit(X, y)
    assert seen[0]["stage"] == [0, 1, 1] and seen[0]["mean_test_score"] == [0.0, 1.0, 2.0]
    assert search.cv_results_["params"][-1] == {"a": 1, "b": 2}  # the two gains together, from the best (b=2)
    assert search.stage_of_candidate_ == [0, 1, 1, 2]  # an empty grid runs nothing


def test_required_stages_run_in_full_whatever_the_budget():
    X, y = np.zeros((8, 1)), np.zeros(8)
    search = _StagedSearchCV(_Sleeper(0.05), [{"c": [0, 1, 2]}, {"c": [3, 4]}], cv=2, budget=1e-3,
                             required_stages=1).fit(X, y)
    assert [p["c"] for p in search.cv_results_["params"]] == [0, 1, 2]
    assert [(s["stage"], s["params"]["c"]) for s in search.skipped_] == [(1, 3), (1, 4)]
    with pytest.raises(ValueError, match="required_stages"):
        resolve_search({"stages": [{"clf__standardize": [True]}], "required_stages": 2})


def test_select_segmenter_resolves_a_callable_stage(tiny_backbone, data):
    images, masks = data

    def all_blocks(history):
        assert history["stage"] == [0]
        return {"features__blocks": ["all"]}

    result = select_segmenter(images, masks, model=tiny_backbone, search=[{"features__steps": [(10,)]}, all_blocks],
                              budget=None, cv=2, refit=False, progress=False, blocks=(6,), **FAST)
    assert result.cv_results_["params"][1]["features__blocks"] == tuple(range(tiny_backbone.n_decoder_blocks))
    assert result.to_dict()["search"]["stages"][1].endswith("all_blocks")  # named, not an address


def test_the_scale_is_searched_only_with_tiles(tiny_backbone, data):
    images, masks = data
    stages = [{"features__scale": [1.0, 2.0]}]
    untiled = select_segmenter(images, masks, model=tiny_backbone, search=stages, budget=None, cv=2, progress=False,
                               blocks=(6,), steps=(10,), **FAST)
    # scale is image pixels per model pixel of a tile: without tiles the stage is dropped
    assert untiled.cv_results_["params"] == [{}]
    tiled = select_segmenter(images, masks, model=tiny_backbone, search=stages, budget=None, cv=2, progress=False,
                             blocks=(6,), steps=(10,), features__tile=16, **FAST)
    assert [p["features__scale"] for p in tiled.cv_results_["params"]] == [1.0, 2.0]
    assert tiled.segmenter_[0].tile == 16
    assert tiled.segmenter_[0].scale == tiled.best_params_["features__scale"]


@pytest.mark.parametrize("name", ["default", "full"])
def test_the_presets_search_the_scale(name):
    stages = resolve_search(name)["stages"]
    assert sum("features__scale" in stage for stage in stages if isinstance(stage, dict)) == 1
