"""SelfTrainingSegmenter: the contract, the rounds, the pixel filter, and its use inside a grid search."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sklearn_ddpm import SelfTrainingSegmenter, make_segmenter
from sklearn_ddpm.features import ActivationCache
from sklearn_ddpm.semi_supervised import SelfTrainingSegmenter as Exported
from sklearn_ddpm.synthetic import uncertainty_filter
from tests.conftest import make_squares

# Small and fast: 2-member ensembles (an uncertainty needs two), 5 epochs of 150 pixels per image.
FAST = {"blocks": (6,), "steps": (10,), "n_estimators": 2, "max_epochs": 5, "max_pixels_per_image": 150,
        "max_pixels_per_class": None, "refine": None}


@pytest.fixture(scope="module")
def data():
    images, masks = make_squares(6, (32, 32), seed=1)
    unlabelled = [np.full_like(m, 255) for m in masks[4:]]
    return list(images), list(masks[:4]) + unlabelled, list(masks[4:])


@pytest.fixture
def segmenter(tiny_backbone):
    return make_segmenter(tiny_backbone, memory=ActivationCache(), **FAST)


def test_contract(segmenter):
    est = SelfTrainingSegmenter(segmenter, n_rounds=2, keep_fraction=0.5, keep_scope="pool")
    assert Exported is SelfTrainingSegmenter
    params = est.get_params()
    assert params["n_rounds"] == 2 and params["segmenter__clf__n_estimators"] == 2
    copy = clone(est)
    assert copy.get_params(deep=False)["keep_fraction"] == 0.5 and copy.segmenter is not segmenter
    assert not hasattr(copy, "segmenter_")
    with pytest.raises(ValueError, match="n_rounds"):
        SelfTrainingSegmenter(segmenter, n_rounds=-1).fit([np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8))])
    with pytest.raises(ValueError, match="keep_fraction"):
        SelfTrainingSegmenter(segmenter, keep_fraction=0.0).fit([np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8))])


def test_no_labelled_image_is_an_error(segmenter, data):
    images, masks, _ = data
    with pytest.raises(ValueError, match="at least one labelled image"):
        SelfTrainingSegmenter(segmenter).fit(images[4:], masks[4:])
    with pytest.raises(ValueError, match="one mask per image"):
        SelfTrainingSegmenter(segmenter).fit(images, masks[:-1])


def test_zero_rounds_is_the_segmenters_fit_on_the_labelled_images(segmenter, data):
    images, masks, _ = data
    est = SelfTrainingSegmenter(segmenter, n_rounds=0).fit(images, masks)
    plain = clone(segmenter).fit(images[:4], masks[:4])
    np.testing.assert_array_equal(np.asarray(est.predict(images)), np.asarray(plain.predict(images)))
    assert est.n_iter_ == 0 and est.n_pseudo_pixels_ == []
    assert est.segmenter_[-1].n_training_pixels_ == 4 * 150


def test_unlabelled_images_act_only_through_their_pseudo_labels(segmenter, data):
    images, masks, truth = data
    est = SelfTrainingSegmenter(segmenter, n_rounds=1, keep_fraction=0.5).fit(images, masks)
    assert est.n_iter_ == 1
    # the labelled masks are kept as given; the unlabelled ones became pseudo-labels
    for given, used in zip(masks[:4], est.transduction_[:4]):
        np.testing.assert_array_equal(given, used)
    pseudo = est.transduction_[4:]
    kept = [p != 255 for p in pseudo]
    assert est.n_pseudo_pixels_ == [sum(int(k.sum()) for k in kept)]
    assert all(k.sum() == k.size // 2 for k in kept)  # keep_fraction of each image's pixels
    # the pseudo-labels are the round-0 segmenter's predictions, kept where its members agree most
    first = clone(segmenter).fit(images[:4], masks[:4])
    features = first[:-1].transform(images[4:])
    labels, uncertainty = first[-1].predict_with_uncertainty(features)
    for p, label, u in zip(pseudo, labels, uncertainty):
        keep = uncertainty_filter(np.asarray(u).ravel(), 0.5).reshape(u.shape)
        np.testing.assert_array_equal(p, np.where(keep, label, 255))
    # and the final model is the segmenter fitted on the labelled images plus those pseudo-labels
    refit = clone(segmenter).fit(images, est.transduction_)
    np.testing.assert_array_equal(np.asarray(est.predict(images)), np.asarray(refit.predict(images)))
    # a model trained on more than the labelled images' pixels
    assert est.segmenter_[-1].n_training_pixels_ > 4 * 150
    assert 0 < est.uncertainty_thresholds_[0]
    assert est.score(images[4:], truth) > 0.5  # it learned the squares


def test_pool_scope_keeps_a_share_of_all_unlabelled_pixels(segmenter, data):
    images, masks, _ = data
    est = SelfTrainingSegmenter(segmenter, n_rounds=2, keep_fraction=0.3, keep_scope="pool").fit(images, masks)
    assert est.n_iter_ == 2 and len(est.n_pseudo_pixels_) == 2
    # the filter's rule: int(n * (1 - keep_fraction)) pixels dropped, over both images together
    n = est.n_unlabelled_pixels_
    assert est.n_pseudo_pixels_ == [n - int(n * (1 - 0.3))] * 2
    kept = np.concatenate([(p != 255).ravel() for p in est.transduction_[4:]])
    assert kept.sum() == est.n_pseudo_pixels_[-1]


def test_no_unlabelled_image_warns_and_fits_once(segmenter, data):
    images, masks, _ = data
    with pytest.warns(UserWarning, match="no unlabelled image"):
        est = SelfTrainingSegmenter(segmenter, n_rounds=2).fit(images[:4], masks[:4])
    assert est.n_iter_ == 0


def test_a_last_step_without_uncertainty_is_refused(data):
    from sklearn.dummy import DummyClassifier

    images, masks, _ = data
    with pytest.raises(TypeError, match="predict_with_uncertainty"):
        SelfTrainingSegmenter(DummyClassifier(), n_rounds=1).fit(images, masks)


def test_grid_search_over_rounds_scores_only_labelled_images(segmenter, data):
    images, masks, _ = data
    # folds over the labelled images; the unlabelled ones train in every fold and never score
    labelled, unlabelled = np.arange(4), np.arange(4, 6)
    splits = [(np.concatenate([labelled[train], unlabelled]), labelled[test])
              for train, test in GroupKFold(2).split(labelled, groups=labelled)]
    search = GridSearchCV(SelfTrainingSegmenter(segmenter), {"n_rounds": [0, 1]}, cv=splits).fit(images, masks)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.n_iter_ == search.best_params_["n_rounds"]
