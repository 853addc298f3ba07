import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError

from sklearn_ddpm import MLPEnsembleClassifier, PixelFeatures
from sklearn_ddpm.ensemble import BatchedMLPEnsemble, js_uncertainty, majority_vote, reference_hidden_sizes
from sklearn_ddpm.ensemble._pixels import select_training_pixels


def _pixel_data(n_images=3, size=(12, 10), seed=0):
    """Dense per-pixel features where feature 0 encodes the class, plus matching masks."""
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 3, (n_images, *size))
    features = rng.normal(0, 0.3, (n_images, *size, 5)).astype(np.float32)
    features[..., 0] += masks * 2.0
    return features, masks


def test_majority_vote_and_ties():
    labels = torch.tensor([[0, 1, 1], [2, 2, 0], [0, 1, 2]])
    assert majority_vote(labels, 3).tolist() == [1, 2, 0]
    tie_break = torch.tensor([[0.1, 0.2, 0.7]] * 3)
    assert majority_vote(labels, 3, tie_break).tolist() == [1, 2, 2]


def test_js_uncertainty_on_hand_made_members():
    agree = torch.tensor([[[0.9, 0.1], [0.9, 0.1]]])
    disagree = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert js_uncertainty(agree).item() == pytest.approx(0.0, abs=1e-6)
    assert js_uncertainty(disagree).item() == pytest.approx(np.log(2), rel=1e-5)
    half = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    mean_entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert js_uncertainty(half).item() == pytest.approx(mean_entropy - np.log(2) / 2, rel=1e-5)


def test_module_matches_reference_architecture():
    assert reference_hidden_sizes(29) == (128, 32) and reference_hidden_sizes(30) == (256, 128)
    module = BatchedMLPEnsemble(4, 7, 3, hidden=(128, 32), seeds=[0, 1, 2, 3])
    assert [tuple(w.shape) for w in module.weights] == [(4, 7, 128), (4, 128, 32), (4, 32, 3)]
    weight = module.weights[0].detach()
    assert abs(weight.std().item() - 0.02) < 0.002 and all(b.abs().sum() == 0 for b in module.biases)
    assert not torch.equal(weight[0], weight[1])  # own init per member


def test_members_equal_standalone_mlps():
    module = BatchedMLPEnsemble(3, 6, 4, seeds=[10, 11, 12]).eval()
    x = torch.randn(5, 6)
    for m, seed in enumerate([10, 11, 12]):
        alone = BatchedMLPEnsemble(1, 6, 4, seeds=[seed]).eval()
        torch.testing.assert_close(module(x)[:, m], alone(x)[:, 0])


def test_eval_forward_equals_plain_mlps_with_batch_norm_statistics():
    """Eval mode folds BatchNorm into the next layer; a plain torch MLP per member must agree."""
    module = BatchedMLPEnsemble(2, 6, 4, hidden=(8, 5), seeds=[0, 1])
    generator = torch.Generator().manual_seed(0)
    for norm in module.norms:
        for buffer in (norm.running_mean, norm.weight.data, norm.bias.data):
            buffer.copy_(torch.randn(buffer.shape, generator=generator))
        norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)
    module.eval()
    x = torch.randn(7, 6, generator=generator)
    for m in range(2):
        layers = []
        for k, (weight, bias) in enumerate(zip(module.weights, module.biases)):
            linear = torch.nn.Linear(*weight.shape[1:])
            linear.weight.data, linear.bias.data = weight[m].detach().T, bias[m].detach()
            layers.append(linear)
            if k < len(module.norms):
                norm, width = module.norms[k], weight.shape[2]
                alone = torch.nn.BatchNorm1d(width).eval()
                for name in ("running_mean", "running_var", "weight", "bias"):
                    getattr(alone, name).data = getattr(norm, name).detach()[m * width:(m + 1) * width]
                layers += [torch.nn.ReLU(), alone]
        torch.testing.assert_close(module(x)[:, m], torch.nn.Sequential(*layers)(x), atol=1e-5, rtol=1e-5)


def test_batched_training_equals_one_by_one():
    X, y = make_classification(n_samples=300, random_state=0)
    params = dict(n_estimators=3, random_state=0, max_epochs=2, patience=None)
    batched = MLPEnsembleClassifier(**params).fit(X, y)
    one_by_one = MLPEnsembleClassifier(batched=False, **params).fit(X, y)
    for a, b in zip(batched.net_.module_.state_dict().values(), one_by_one.net_.module_.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), atol=1e-5, rtol=1e-4)


def test_reference_early_stopping_stops_members():
    X, y = make_classification(n_samples=200, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, random_state=0, max_epochs=100, patience=5).fit(X, y)
    assert all(e is not None and e >= 4 for e in clf.stop_epochs_)
    assert len(clf.net_.history) < 100


def test_image_input_predicts_label_maps():
    features, masks = _pixel_data()
    clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=20, lr=1e-2, random_state=0, min_class_pixels=0)
    clf.fit(features, masks)
    pred = clf.predict(features)
    assert pred.shape == masks.shape
    assert (pred == masks).mean() > 0.9
    proba = clf.predict_proba(features)
    assert proba.shape == (*masks.shape, 3)
    np.testing.assert_allclose(proba.sum(-1), 1, rtol=1e-5)
    uncertainty = clf.predict_uncertainty(features)
    assert uncertainty.shape == masks.shape and (uncertainty >= -1e-6).all()
    assert clf.uncertainty_scores(features).shape == (3,)
    assert clf.score(features, masks) > 0.8


def test_list_input_of_mixed_sizes():
    a, ma = _pixel_data(1, (12, 10), seed=1)
    b, mb = _pixel_data(1, (7, 15), seed=2)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0, min_class_pixels=0)
    clf.fit([a[0], b[0]], [ma[0], mb[0]])
    pred = clf.predict([a[0], b[0]])
    assert isinstance(pred, list) and pred[0].shape == (12, 10) and pred[1].shape == (7, 15)


def test_pixel_features_input_equals_dense_input():
    rng = np.random.default_rng(0)
    maps = [torch.from_numpy(rng.normal(size=(2, 4, 5, 3)).astype(np.float32))]
    compact = PixelFeatures(maps, [(50, 0)], [(8, 10), (8, 10)])
    masks = (np.asarray(compact)[..., 0] > 0).astype(int)
    params = dict(n_estimators=2, max_epochs=3, random_state=0, min_class_pixels=0)
    a = MLPEnsembleClassifier(**params).fit(compact, masks)
    b = MLPEnsembleClassifier(**params).fit(np.asarray(compact), masks)
    np.testing.assert_allclose(a.predict_proba(compact), b.predict_proba(np.asarray(compact)), atol=1e-5)


def test_ignore_index_and_small_classes_are_dropped():
    masks = [np.array([[0] * 30 + [1] * 10 + [255] * 5 + [2] * 25]).reshape(7, 10)]
    image, ys, xs, labels, dropped = select_training_pixels(masks, min_class_pixels=20)
    assert set(labels.tolist()) == {0, 2} and len(labels) == 55 and dropped == {1: (10, 1)}
    _, _, _, labels, dropped = select_training_pixels(masks, min_class_pixels=0)
    assert set(labels.tolist()) == {0, 1, 2} and dropped == {}
    _, _, _, labels, _ = select_training_pixels(masks, min_class_pixels=0, max_pixels_per_class=4, rng=0)
    assert np.bincount(labels).tolist() == [4, 4, 4]
    _, _, _, labels, _ = select_training_pixels(masks, min_class_pixels=0, max_pixels_per_image=7, rng=0)
    assert len(labels) == 7


def test_class_weight_shifts_predictions():
    X, y = make_classification(n_samples=400, n_informative=2, class_sep=0.3, flip_y=0.3, random_state=0)
    params = dict(n_estimators=2, max_epochs=10, random_state=0)
    plain = MLPEnsembleClassifier(**params).fit(X, y).predict(X)
    weighted = MLPEnsembleClassifier(class_weight={0: 10.0, 1: 1.0}, **params).fit(X, y).predict(X)
    assert (weighted == 0).mean() > (plain == 0).mean() + 0.1


def test_soft_and_hard_voting():
    X, y = make_classification(n_samples=200, random_state=0)
    hard = MLPEnsembleClassifier(n_estimators=5, max_epochs=3, random_state=0).fit(X, y)
    soft = MLPEnsembleClassifier(n_estimators=5, max_epochs=3, random_state=0, voting="soft").fit(X, y)
    np.testing.assert_array_equal(soft.predict(X), soft.predict_proba(X).argmax(1))
    assert (hard.predict(X) == soft.predict(X)).mean() > 0.9


def test_routed_parameters_reach_the_optimizer():
    X, y = make_classification(n_samples=100, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=1, optimizer__weight_decay=0.5).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 0.5
    clf.set_params(optimizer__weight_decay=0.1)
    assert clf.get_params()["optimizer__weight_decay"] == 0.1
    with pytest.raises(TypeError, match="unexpected keyword"):
        MLPEnsembleClassifier(bogus=1).fit(X, y)


@pytest.mark.parametrize(
    "masks, message",
    [
        (np.zeros((3, 12, 10)), "only one class"),
        (np.full((3, 12, 10), 255), "no labelled pixels"),
        (np.zeros((3, 11, 10)), "size"),
        (np.zeros((2, 12, 10)), "2 masks"),
        (np.full((3, 12, 10), -1), "negative"),
        (np.full((3, 12, 10), np.nan), "NaN"),
    ],
)
def test_bad_masks(masks, message):
    features, _ = _pixel_data()
    with pytest.raises(ValueError, match=message):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1).fit(features, masks)


def test_labels_beyond_n_classes_are_rejected():
    features, masks = _pixel_data()
    with pytest.raises(ValueError, match="n_classes=2"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1, n_classes=2).fit(features, masks)


def test_nan_features_and_unfitted_use():
    features, masks = _pixel_data()
    features[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1).fit(features, masks)
    with pytest.raises(NotFittedError):
        MLPEnsembleClassifier().predict(features)


def test_wrong_feature_count_at_predict():
    features, masks = _pixel_data()
    clf = MLPEnsembleClassifier(n_estimators=1, max_epochs=1, min_class_pixels=0).fit(features, masks)
    with pytest.raises(ValueError, match="features"):
        clf.predict(features[..., :3])


def test_predict_with_uncertainty_matches_separate_calls():
    features, masks = _pixel_data()
    clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=2, random_state=0, min_class_pixels=0).fit(features, masks)
    labels, js = clf.predict_with_uncertainty(features)
    np.testing.assert_array_equal(labels, clf.predict(features))
    np.testing.assert_allclose(js, clf.predict_uncertainty(features))


def test_pickle_records_versions_and_warns_on_mismatch():
    from sklearn_ddpm.utils._persistence import VersionMismatchWarning

    X, y = make_classification(n_samples=60, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=1, max_epochs=1).fit(X, y)
    state = clf.__getstate__()
    assert state["_sklearn_ddpm_versions"]["sklearn-ddpm"]
    tampered = MLPEnsembleClassifier.__new__(MLPEnsembleClassifier)
    state["_sklearn_ddpm_versions"] = {**state["_sklearn_ddpm_versions"], "torch": "0.0"}
    with pytest.warns(VersionMismatchWarning, match="torch 0.0"):
        tampered.__setstate__(state)


def test_projected_prediction_equals_dense_prediction():
    """Predicting from compact features (project, then upsample) equals upsample-then-predict."""
    rng = np.random.default_rng(0)
    maps = [
        torch.from_numpy(rng.normal(size=(2, 4, 5, 3)).astype(np.float32)),
        torch.from_numpy(rng.normal(size=(2, 4, 5, 2)).astype(np.float32)),
        torch.from_numpy(rng.normal(size=(2, 8, 10, 4)).astype(np.float32)),
    ]
    compact = PixelFeatures(maps, [(50, 0), (50, 1), (50, 2)], [(13, 17), (13, 17)])
    dense = np.asarray(compact)
    masks = (dense[..., 0] + dense[..., 5] > 0).astype(int)
    clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=2, random_state=0, min_class_pixels=0).fit(compact, masks)
    np.testing.assert_allclose(clf.predict_proba(compact), clf.predict_proba(dense), atol=1e-5)


def test_classes_without_training_pixels_are_never_predicted():
    features, masks = _pixel_data()
    masks = np.minimum(masks, 1)  # labels 0, 1 only
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, n_classes=31, random_state=0, min_class_pixels=0)
    clf.fit(features, masks)
    assert clf.hidden_layer_sizes_ == (256, 128)  # the reference's rule counts the task's 31 classes
    assert clf.trained_classes_.sum() == 2
    proba = clf.predict_proba(features)
    assert proba.shape[-1] == 31 and np.all(proba[..., 2:] == 0)
    assert set(np.unique(clf.predict(features))) <= {0, 1}


def test_standardize_equals_training_on_standardized_features():
    """The folded first layer on raw features gives what the unfolded one gives on standardized ones."""
    features, masks = _pixel_data()
    features[..., 1] = features[..., 1] * 1000 + 40  # a channel on another scale
    features[..., 4] = 7.0  # a constant channel keeps scale 1
    params = dict(n_estimators=2, max_epochs=3, random_state=0, min_class_pixels=0)
    a = MLPEnsembleClassifier(standardize=True, **params).fit(features, masks)
    flat = features.reshape(-1, 5)
    np.testing.assert_allclose(a.feature_mean_, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(a.feature_scale_[:4], flat.std(0, ddof=1)[:4], rtol=1e-4)
    assert a.feature_scale_[4] == 1.0
    standardized = (features - a.feature_mean_) / a.feature_scale_
    b = MLPEnsembleClassifier(**params).fit(standardized, masks)
    assert b.feature_mean_ is None
    np.testing.assert_allclose(a.predict_proba(features), b.predict_proba(standardized), atol=1e-4)


def test_standardize_keeps_compact_prediction_exact():
    rng = np.random.default_rng(1)
    maps = [
        torch.from_numpy((rng.normal(size=(2, 4, 5, 3)) * 300).astype(np.float32)),
        torch.from_numpy(rng.normal(size=(2, 8, 10, 4)).astype(np.float32)),
    ]
    compact = PixelFeatures(maps, [(50, 0), (50, 1)], [(13, 17), (13, 17)])
    dense = np.asarray(compact)
    masks = (dense[..., 0] / 300 + dense[..., 3] > 0).astype(int)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, standardize=True, random_state=0, min_class_pixels=0)
    clf.fit(compact, masks)
    np.testing.assert_allclose(clf.predict_proba(compact), clf.predict_proba(dense), atol=1e-4)


@pytest.mark.parametrize(
    "routed, owner",
    [
        ({"module__hidden": (8, 4)}, "hidden_layer_sizes"),
        ({"module__n_members": 3}, "n_estimators"),
        ({"module__seeds": [0, 1]}, "random_state"),
        ({"module__n_classes": 2}, "n_classes"),
        ({"module__in_features": 20}, "features of X"),
        ({"optimizer__lr": 0.1}, "'lr'"),
        ({"criterion__weight": torch.ones(2)}, "class_weight"),
        ({"criterion__reduction": "mean"}, "per-member"),
        ({"iterator_train__batch_size": 8}, "batch_size"),
        ({"callbacks__reference_early_stopping__patience": 3}, "patience"),
    ],
)
def test_routed_parameter_owned_by_the_estimator_is_refused(routed, owner):
    X, y = make_classification(n_samples=40, random_state=0)
    with pytest.raises(TypeError, match=f"{next(iter(routed))}.*{owner}"):
        MLPEnsembleClassifier(n_estimators=2, max_epochs=1, **routed).fit(X, y)


def test_routed_criterion_parameters_reach_the_loss():
    X, y = make_classification(n_samples=100, random_state=0)
    params = dict(n_estimators=2, max_epochs=1, random_state=0)
    plain = MLPEnsembleClassifier(**params).fit(X, y)
    smoothed = MLPEnsembleClassifier(criterion__label_smoothing=0.4, **params).fit(X, y)
    assert smoothed.net_.criterion_.label_smoothing == 0.4
    assert smoothed.get_params()["criterion__label_smoothing"] == 0.4
    # confident, correct logits: plain cross-entropy is ~0, the smoothed one is not
    target = torch.tensor([[0, 1], [1, 0]])
    logits = 10 * torch.nn.functional.one_hot(target, 2).float()
    assert plain.net_.get_loss(logits, target) < 1e-3
    assert smoothed.net_.get_loss(logits, target) > 1.0


def test_class_weight_is_the_criterion_weight_and_member_losses_are_weighted_means():
    X, y = make_classification(n_samples=100, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=1, class_weight={0: 3.0, 1: 0.5}).fit(X, y)
    net = clf.net_
    np.testing.assert_allclose(net.criterion_.weight.numpy(), [3.0, 0.5])
    logits = torch.randn(6, 2, 2)
    target = torch.tensor([[0, 1], [1, 1], [0, 0], [1, 0], [1, 1], [0, 1]])
    total = net.get_loss(logits, target)
    weight = torch.tensor([3.0, 0.5])[target]
    plain = torch.nn.functional.cross_entropy(logits.permute(0, 2, 1), target, reduction="none")
    expected = (plain * weight).sum(0) / weight.sum(0)  # per member: sum(w * l) / sum(w)
    torch.testing.assert_close(net.member_losses_, expected)
    torch.testing.assert_close(total, expected.sum())


def test_random_state_follows_check_random_state():
    """A RandomState instance seeds the fit; None draws from numpy's global RandomState."""
    X, y = make_classification(n_samples=120, random_state=0)
    params = dict(n_estimators=2, max_epochs=2)

    def fit_proba(random_state):
        return MLPEnsembleClassifier(random_state=random_state, **params).fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(fit_proba(np.random.RandomState(3)), fit_proba(np.random.RandomState(3)))
    assert not np.array_equal(fit_proba(np.random.RandomState(3)), fit_proba(np.random.RandomState(4)))
    np.random.seed(5)
    first = fit_proba(None)
    np.random.seed(5)
    np.testing.assert_array_equal(fit_proba(None), first)


def _scribbles(masks, per_class, seed=0):
    """Keep ``per_class`` labelled pixels of every class in every mask, the rest unlabelled (255)."""
    rng = np.random.default_rng(seed)
    sparse = np.full_like(masks, 255)
    for i, mask in enumerate(masks):
        for k in np.unique(mask):
            ys, xs = np.nonzero(mask == k)
            keep = rng.choice(len(ys), size=per_class, replace=False)
            sparse[i, ys[keep], xs[keep]] = k
    return sparse


def test_scribble_labels_train_with_the_default_min_class_pixels():
    features, masks = _pixel_data(n_images=3, size=(16, 16))
    scribbles = _scribbles(masks, per_class=15)
    assert (scribbles == 255).mean() > 0.8  # mostly unlabelled, as drawn strokes are
    # The reference's fixed threshold drops every stroke; "auto" (the default) keeps them.
    with pytest.raises(ValueError, match=r"no labelled pixels.*class 0 \(45 pixels in 3 images\).*min_class_pixels=0"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1, min_class_pixels=20).fit(features, scribbles)
    clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=30, lr=1e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.fit(features, scribbles)
    assert clf.min_class_pixels == "auto" and clf.n_training_pixels_ == 3 * 3 * 15
    assert (clf.predict(features) == masks).mean() > 0.9  # chance: 1/3
    explicit = MLPEnsembleClassifier(n_estimators=3, max_epochs=30, lr=1e-2, min_class_pixels=0, random_state=0)
    np.testing.assert_array_equal(explicit.fit(features, scribbles).predict(features), clf.predict(features))


def test_auto_min_class_pixels_applies_the_reference_rule_to_dense_masks_only():
    masks = np.zeros((2, 10, 10), np.int64)
    masks[:, :, 5:] = 1
    masks[:, 0, :3] = 2  # a 3-pixel speck of class 2 in two dense masks
    masks[1, 5:, :] = 255  # image 1: exactly half labelled, still dense
    _, _, _, labels, dropped = select_training_pixels(masks, min_class_pixels="auto")
    assert dropped == {2: (6, 2)} and 2 not in labels
    masks[1, 4, :] = 255  # now under half labelled: sparse, its speck is kept
    _, _, _, labels, dropped = select_training_pixels(masks, min_class_pixels="auto")
    assert dropped == {2: (3, 1)} and (labels == 2).sum() == 3


def test_classes_dropped_by_min_class_pixels_are_named_in_a_warning():
    features, masks = _pixel_data(n_images=3, size=(16, 16))
    masks[:, :, :] = np.where(np.arange(16) < 8, 0, 1)  # classes 0 and 1, 128 pixels each
    masks[0, :2, :5] = 2  # class 2: 10 pixels in image 0, 12 in image 1
    masks[1, :3, :4] = 2
    expected = (r"min_class_pixels='auto' \(20 in images at least 50% labelled\) dropped .*: "
                r"class 2 \(22 pixels in 2 images, none left\)")
    with pytest.warns(UserWarning, match=expected) as record:
        clf = MLPEnsembleClassifier(n_estimators=1, max_epochs=1, random_state=0).fit(features, masks)
    assert len(record) == 1
    assert clf.classes_.tolist() == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1, min_class_pixels=10).fit(features, masks)


@pytest.mark.parametrize("sizes", [(0,), (8, -1), ("a",), (2.5,), 16])
def test_hidden_layer_sizes_are_checked_with_the_other_parameters(sizes):
    X, y = make_classification(n_samples=40, random_state=0)
    with pytest.raises(ValueError, match="'hidden_layer_sizes' parameter of MLPEnsembleClassifier must be"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1, hidden_layer_sizes=sizes).fit(X, y)


def test_untrained_class_dominating_the_logits_gives_no_nan():
    """Issue 26: classes declared by n_classes but absent from training were zeroed after the softmax
    and the rest renormalised; where an untrained class took all the mass that was 0 / 0 = NaN, and
    the vote then predicted class 0 everywhere."""
    features, masks = _pixel_data(n_images=2)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, n_classes=5, random_state=0).fit(features, masks)
    assert clf.trained_classes_.tolist() == [True, True, True, False, False]
    with torch.no_grad():
        clf.net_.module_.biases[-1][:, 4] = 1e4  # class 4 (untrained) outweighs every trained class
    probabilities = clf.predict_proba(features)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(-1), 1, rtol=1e-5)
    assert (probabilities[..., 3:] == 0).all()
    assert set(np.unique(clf.predict(features))) <= {0, 1, 2}


def test_nan_probabilities_fail_loudly_naming_the_image():
    features, masks = _pixel_data(n_images=2)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, random_state=0).fit(features, masks)
    with torch.no_grad():
        clf.net_.module_.biases[-1][1, 0] = float("nan")  # member 1's weights hold a NaN
    for method in (clf.predict, clf.predict_proba, clf.predict_uncertainty):
        with pytest.raises(FloatingPointError, match=r"image 0: .* 120 of its 120 pixels \(members \[1\]\)"):
            method(features)
