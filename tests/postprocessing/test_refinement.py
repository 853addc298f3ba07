"""Guided-filter refinement, test-time flip averaging and the large-batch schedule: tiny and fast."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm.ensemble._schedule import batch_schedule
from sklearn_ddpm.postprocessing import GuidedFilter, average_mirrored
from sklearn_ddpm.postprocessing._guided import guided_filter

from ..conftest import make_squares


def _edge_case():
    """A sharp vertical edge in the image at x = 8; class-1 probabilities that blur across it."""
    image = np.zeros((12, 16, 3), np.uint8)
    image[:, 8:] = 255
    blurred = 1 / (1 + np.exp(-(np.arange(16) - 7.5) / 2.0))  # a soft step centred on the edge
    foreground = np.broadcast_to(blurred.astype(np.float32), (12, 16))
    return image, np.stack([1 - foreground, foreground], -1)


def test_guided_filter_pulls_probabilities_onto_the_image_edge():
    image, probabilities = _edge_case()
    refined = GuidedFilter(radius=3, eps=1e-3).refine(probabilities, image)
    assert refined.shape == probabilities.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(-1), 1, atol=1e-5)
    assert refined.min() >= 0
    # the soft step becomes steep where the image changes, and only there
    jump = refined[0, 8, 1] - refined[0, 7, 1]
    assert jump > 3 * (probabilities[0, 8, 1] - probabilities[0, 7, 1])
    assert jump > 3 * np.diff(refined[0, :, 1]).clip(0)[np.arange(15) != 7].max()
    # a flat image gives no edge to follow: the filter only smooths
    flat = GuidedFilter(radius=3, eps=1e-3).refine(probabilities, np.zeros_like(image))
    assert flat[0, 8, 1] - flat[0, 7, 1] < probabilities[0, 8, 1] - probabilities[0, 7, 1]


def _guided_filter_by_windows(guide, source, radius, eps):
    """He et al.'s filter straight from its definition: a ridge fit per window, averaged per pixel."""
    height, width, channels = guide.shape
    padded_i = np.pad(guide, ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    padded_p = np.pad(source, ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    a = np.empty((height, width, channels, source.shape[-1]))
    b = np.empty((height, width, source.shape[-1]))
    for y in range(height):
        for x in range(width):
            window_i = padded_i[y : y + 2 * radius + 1, x : x + 2 * radius + 1].reshape(-1, channels)
            window_p = padded_p[y : y + 2 * radius + 1, x : x + 2 * radius + 1].reshape(-1, source.shape[-1])
            centred = window_i - window_i.mean(0)
            cov = centred.T @ centred / len(window_i)
            a[y, x] = np.linalg.solve(cov + eps * np.eye(channels), centred.T @ (window_p - window_p.mean(0)) / len(window_i))
            b[y, x] = window_p.mean(0) - window_i.mean(0) @ a[y, x]
    padded_a = np.pad(a, ((radius, radius), (radius, radius), (0, 0), (0, 0)), mode="symmetric")
    padded_b = np.pad(b, ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    out = np.empty_like(source)
    for y in range(height):
        for x in range(width):
            mean_a = padded_a[y : y + 2 * radius + 1, x : x + 2 * radius + 1].mean((0, 1))
            mean_b = padded_b[y : y + 2 * radius + 1, x : x + 2 * radius + 1].mean((0, 1))
            out[y, x] = guide[y, x] @ mean_a + mean_b
    return out


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("channels, classes, radius", [(3, 2, 2), (3, 3, 8), (4, 2, 3), (1, 2, 2)])
def test_guided_filter_matches_its_definition(gray, channels, classes, radius):
    # colour guides take the closed-form 3 x 3 solve, others numpy's; radius 8 reflects past the 7 x 9 image
    rng = np.random.default_rng(0)
    guide = rng.random((7, 9, channels))
    guide[:, 5:] += 1
    if gray:  # identical channels: a rank-one colour covariance in every window
        guide[..., 1:] = guide[..., :1]
    source = rng.random((7, 9, classes))
    np.testing.assert_allclose(guided_filter(guide, source, radius, 1e-2),
                               _guided_filter_by_windows(guide, source, radius, 1e-2), atol=1e-10)


def test_guided_filter_rejects_mismatched_shapes_and_bad_parameters():
    image, probabilities = _edge_case()
    with pytest.raises(ValueError, match="do not match"):
        GuidedFilter().refine(probabilities[:-1], image)
    with pytest.raises(ValueError, match="radius"):
        GuidedFilter(radius=0).refine(probabilities, image)


def test_average_mirrored_maps_the_mirror_back():
    p = torch.rand(3 * 5, 2, 4)  # a 3 x 5 image, 2 members, 4 classes
    mirror = p.reshape(3, 5, 2, 4).flip(1).reshape(15, 2, 4)  # what a flip-equivariant model would give
    torch.testing.assert_close(average_mirrored(p, mirror, width=5), p)


def _fitted(backbone, flip_tta=False, **clf):
    images, masks = make_squares(6, size=(24, 32))
    transformer = DDPMFeatureTransformer(backbone, blocks=(6, 9), steps=(50,), flip_tta=flip_tta).fit(images)
    params = dict(n_estimators=2, max_epochs=2, lr=1e-2, max_pixels_per_image=200, random_state=0, **clf)
    return transformer, MLPEnsembleClassifier(**params).fit(transformer.fit_transform(images[:4]), masks[:4]), images


def test_refine_predict_is_the_argmax_of_predict_proba(tiny_backbone):
    transformer, clf, images = _fitted(tiny_backbone, refine=GuidedFilter(radius=2, eps=1e-2))
    features = transformer.transform(images[4:])
    proba = clf.predict_proba(features)
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(features), clf.classes_[proba.argmax(-1)])
    labels, uncertainty = clf.predict_with_uncertainty(features)
    np.testing.assert_array_equal(labels, clf.predict(features))
    np.testing.assert_array_equal(uncertainty, clf.predict_uncertainty(features))
    # the refined probabilities are the guided filter of the plain mean, image by image
    plain = clf.set_params(refine=None).predict_proba(features)
    expected = GuidedFilter(radius=2, eps=1e-2).refine(plain[0], images[4])
    np.testing.assert_allclose(proba[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="refine needs the images"):
        clf.set_params(refine=GuidedFilter()).predict(np.asarray(features))


def test_flip_tta_averages_the_members_on_the_image_and_its_mirror(tiny_backbone):
    transformer, clf, images = _fitted(tiny_backbone, flip_tta=True)
    assert transformer.fit_transform(images[:2]).mirrored is None  # training data: no mirrors
    features = transformer.transform(images[4:])
    assert features.mirrored is not None and features[1:].mirrored.image_sizes.tolist() == [[24, 32]]
    plain = transformer.set_params(flip_tta=False).transform(images[4:])
    mirrored = transformer.transform([image[:, ::-1] for image in images[4:]])
    expected = (clf.predict_proba(plain) + clf.predict_proba(mirrored)[:, :, ::-1]) / 2
    np.testing.assert_allclose(clf.predict_proba(features), expected, atol=1e-5)
    assert clf.predict(features).shape == (2, 24, 32)
    with pytest.raises(ValueError, match="compact"):
        transformer.set_params(flip_tta=True, output="dense").transform(images[4:])


def test_grid_search_tunes_the_guided_filter(tiny_backbone):
    images, masks = make_squares(6, size=(24, 32))
    pipe = Pipeline([
        ("features", DDPMFeatureTransformer(tiny_backbone, blocks=(6, 9), steps=(50,))),
        ("clf", MLPEnsembleClassifier(n_estimators=2, max_epochs=2, lr=1e-2, max_pixels_per_image=200,
                                      random_state=0, refine=GuidedFilter())),
    ])
    search = GridSearchCV(pipe, {"clf__refine__radius": [1, 3], "features__flip_tta": [False, True]},
                          cv=GroupKFold(n_splits=2)).fit(images, masks, groups=np.arange(6))
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4
    # each candidate's score is what its setting gives when fitted by hand on the same folds, so the
    # radius and flip_tta reach the filter and the transformer inside the search
    for params, score in zip(search.cv_results_["params"], scores):
        by_hand = cross_val_score(clone(pipe).set_params(**params), images, masks, groups=np.arange(6),
                                  cv=GroupKFold(n_splits=2))
        assert score == pytest.approx(by_hand.mean(), abs=1e-12), params
    assert len(np.unique(np.round(scores, 10))) > 1  # the settings change the result: something is tuned
    best = search.best_estimator_
    assert best.named_steps["clf"].refine.radius == search.best_params_["clf__refine__radius"]
    assert best.named_steps["features"].flip_tta == search.best_params_["features__flip_tta"]
    assert best.predict(images[:1]).shape == (1, 24, 32)
    # the radius is applied at prediction: another radius gives other probabilities from the same fit
    radius_1 = best.set_params(clf__refine__radius=1).predict_proba(images[:1])
    radius_3 = best.set_params(clf__refine__radius=3).predict_proba(images[:1])
    assert not np.allclose(radius_1, radius_3)


def test_batch_schedule_is_the_reference_at_64_and_scales_above():
    assert batch_schedule(64) == batch_schedule(16) == (1e-3, 50, 4)
    lr, patience, min_epochs = batch_schedule(4096)
    assert (lr, patience, min_epochs) == (pytest.approx(8e-3), 1, 4)
    X, y = make_squares(2, size=(8, 8))
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=1, batch_size=256, random_state=0, patience=7, min_epochs=2)
    clf.fit(X.astype(np.float32).reshape(-1, 3), y.reshape(-1))
    assert (clf.lr_, clf.patience_, clf.min_epochs_) == (pytest.approx(2e-3), 7, 2)


def test_default_segmenter_refines_with_a_fresh_guided_filter():
    from sklearn_ddpm import make_segmenter

    first, second = make_segmenter(), make_segmenter()
    assert isinstance(first[-1].refine, GuidedFilter) and first[-1].refine is not second[-1].refine
    assert first[-1].refine.get_params() == GuidedFilter().get_params()
    assert make_segmenter(refine=None)[-1].refine is None
    assert make_segmenter(flip_tta=True)[0].flip_tta
