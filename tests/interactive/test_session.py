"""InteractiveSegmenter: labels, fits without rerunning the UNet, equality with make_segmenter, suggest, save/load."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sklearn_ddpm import load_segmenter, make_segmenter
from sklearn_ddpm.interactive import InteractiveSegmenter, Suggestion, mask_to_napari, napari_to_mask

from ..conftest import make_squares

FAST = dict(steps=(50, 150), blocks=(3, 6), n_estimators=3, max_epochs=5)


class UNetCalls:
    """Counts UNet2DModel forward passes while the ``with`` block runs."""

    def __enter__(self):
        from diffusers import UNet2DModel

        self.count = 0

        def hook(module, args):
            if isinstance(module, UNet2DModel):
                self.count += 1

        self._handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def scribbles(masks, per_class=6, seed=0):
    """A short horizontal stroke of ``per_class`` pixels inside every class of every mask; the rest 255."""
    rng = np.random.default_rng(seed)
    out = np.full_like(masks, 255, dtype=np.uint8)
    for i, mask in enumerate(masks):
        for k in np.unique(mask):
            ys, xs = np.nonzero(mask == k)
            start = rng.integers(len(ys))
            y, x = ys[start], xs[start]
            row = xs[(ys == y) & (xs >= x)][:per_class]
            out[i, y, row] = k
    return out


@pytest.fixture
def session(tiny_backbone):
    images, masks = make_squares(n_images=3)
    seg = InteractiveSegmenter(tiny_backbone, class_names=["background", "square"], **FAST)
    seg.add_images(list(images))
    return seg, images, masks


def test_napari_conversion_round_trips_and_rejects_bad_values():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (5, 7)).astype(np.uint8)
    mask[rng.random((5, 7)) < 0.5] = 255
    layer = mask_to_napari(mask)
    assert layer.dtype == np.int32 and (layer[mask == 255] == 0).all() and (layer[mask != 255] == mask[mask != 255] + 1).all()
    np.testing.assert_array_equal(napari_to_mask(layer), mask)
    np.testing.assert_array_equal(mask_to_napari(napari_to_mask(layer)), layer)
    with pytest.raises(ValueError, match=r"napari labels \[256\]"):
        napari_to_mask(np.array([[0, 256]]))
    with pytest.raises(ValueError, match="2-D"):
        napari_to_mask(np.zeros((2, 2, 2), int))
    with pytest.raises(ValueError, match="integers"):
        mask_to_napari(np.zeros((2, 2)))


def test_add_labels_merges_and_set_labels_replaces(session):
    seg, images, _ = session
    assert seg.n_images == 3 and seg.n_labelled_pixels == 0 and (seg.labels(0) == 255).all()
    first = np.full((40, 40), 255, np.uint8)
    first[0, :10] = 0
    second = np.full((40, 40), 255, np.uint8)
    second[0, 5:15] = 1  # overlaps 5 pixels of the first stroke
    seg.add_labels(0, first).add_labels(0, second)
    labels = seg.labels(0)
    assert (labels[0, :5] == 0).all() and (labels[0, 5:15] == 1).all() and seg.n_labelled_pixels == 15
    labels[:] = 0  # a copy: the session's labels stay
    assert seg.n_labelled_pixels == 15 and seg.labelled_images == [0]
    seg.set_labels(0, second)
    np.testing.assert_array_equal(seg.labels(0), second)
    assert seg.n_labelled_pixels == 10
    with pytest.raises(ValueError, match=r"labels \[2\] outside the classes 0..1"):
        seg.add_labels(1, np.full((40, 40), 2))
    with pytest.raises(ValueError, match=r"shape \(40, 41\)"):
        seg.add_labels(1, np.full((40, 41), 255))
    with pytest.raises(IndexError, match="3 images"):
        seg.labels(3)
    assert seg.add_images([images[0][..., 0]]) == [3]  # grayscale becomes RGB
    assert seg.image(3).shape == (40, 40, 3)


def test_fit_needs_two_labelled_classes(session):
    seg, _, _ = session
    with pytest.raises(NotFittedError):
        seg.predict(0)
    stroke = np.full((40, 40), 255, np.uint8)
    stroke[2, :8] = 0
    with pytest.raises(ValueError, match="only class 0"):
        seg.add_labels(0, stroke).fit()
    assert seg.needs_fit


def test_sparse_labels_fit_with_defaults_and_equal_make_segmenter(session, tiny_backbone):
    seg, images, masks = session
    sparse = scribbles(masks)
    assert (sparse != 255).sum() == 3 * 2 * 6  # 6 pixels per class: below the reference's 20
    for i in range(3):
        seg.add_labels(i, sparse[i])
    seg.fit()
    # The same fit through the package's pipeline with its defaults (no min_class_pixels flag).
    # (the session trains at batch 256, chosen for refits in benchmarks/results/refit_batch.json)
    pipeline = make_segmenter(tiny_backbone, n_classes=2, **FAST).set_params(clf__batch_size=seg.mlp_batch_size)
    pipeline.fit(list(images), list(sparse))
    assert pipeline[-1].min_class_pixels == "auto"
    assert pipeline[-1].n_training_pixels_ == seg.pipeline_[-1].n_training_pixels_ == 36
    expected = pipeline.predict(list(images))
    uncertainty = pipeline[-1].predict_uncertainty(pipeline[0].transform(list(images)))
    for i in range(3):
        np.testing.assert_array_equal(seg.predict(i), expected[i])
        np.testing.assert_allclose(seg.uncertainty(i), uncertainty[i], rtol=0, atol=1e-6)
        proba = seg.predict_proba(i)
        assert proba.shape == (40, 40, 2) and np.allclose(proba.sum(-1), 1, atol=1e-5)
    assert seg.n_fits_ == 1 and not seg.needs_fit
    assert seg.class_names_ == ["background", "square"]


def test_refits_never_rerun_the_unet(session):
    seg, images, masks = session
    sparse = scribbles(masks)
    seg.add_labels(0, sparse[0])
    with UNetCalls() as first:
        seg.fit()
    assert first.count > 0  # the first fit extracts every image's features
    before = seg.predict(0).copy()
    with UNetCalls() as later:
        seg.add_labels(1, sparse[1])
        assert seg.needs_fit
        seg.fit()
        seg.predict(1), seg.uncertainty(2), seg.predict_proba(0), seg.suggest(k=2)
        seg.add_labels(2, sparse[2])
        seg.fit()
    assert later.count == 0
    assert seg.n_fits_ == 3 and seg.pipeline_[-1].n_training_pixels_ == 36
    assert not np.array_equal(before, seg.predict(0)) or seg.pipeline_[-1].n_training_pixels_ > 12
    # A new image is extracted once, on its own.
    with UNetCalls() as added:
        (index,) = seg.add_images([images[0][::-1].copy()])
        seg.predict(index)
        seg.predict(index)
        seg.fit()
    assert added.count == len(FAST["steps"])  # one pass per timestep, for the one new image


def test_predict_images_matches_the_session(session):
    seg, images, masks = session
    for i, mask in enumerate(scribbles(masks)):
        seg.add_labels(i, mask)
    seg.fit()
    predicted = seg.predict_images(list(images))
    assert len(predicted) == 3 and seg.n_images == 3
    for i in range(3):
        np.testing.assert_array_equal(predicted[i], seg.predict(i))


def test_suggest_returns_the_most_uncertain_unlabelled_regions(session):
    seg, _, masks = session
    sparse = scribbles(masks)
    seg.add_labels(0, sparse[0])
    seg.fit()
    suggestions = seg.suggest(k=4)
    assert 1 <= len(suggestions) <= 4 and all(isinstance(s, Suggestion) for s in suggestions)
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    maps = [seg.uncertainty(i) for i in range(3)]
    threshold = np.percentile(np.concatenate([m[seg.labels(i) == 255] for i, m in enumerate(maps)]), 95)
    for s in suggestions:
        y0, x0, y1, x1 = s.bbox
        assert s.mask.shape == (40, 40) and s.mask[y0:y1, x0:x1].any() and not s.mask[:y0].any()
        values = maps[s.image][s.mask]
        assert (values >= threshold).all() and s.score == pytest.approx(values.sum(), rel=1e-5)
        assert not (s.mask & (seg.labels(s.image) != 255)).any()  # labelled pixels are never suggested
        assert s.mask[s.center]
    only = seg.suggest(k=3, images=[2])
    assert only and {s.image for s in only} == {2}
    by_mean = seg.suggest(k=1, score="mean", min_pixels=1)[0]
    assert by_mean.score == pytest.approx(maps[by_mean.image][by_mean.mask].mean(), rel=1e-5)


def test_save_writes_the_fit_commands_file(session, tmp_path):
    seg, images, masks = session
    names = ["a.png", "b.png", "c.png"]
    seg = InteractiveSegmenter(seg.model, class_names=["background", "square"], **FAST)
    seg.add_images(list(images), names=names)
    sparse = scribbles(masks)
    seg.add_labels(0, sparse[0]).add_labels(2, sparse[2]).fit()
    path = seg.save(tmp_path / "seg.joblib")
    pipeline = load_segmenter(path)
    assert pipeline.class_names_ == ["background", "square"] and pipeline.training_files_ == ["a.png", "c.png"]
    assert set(pipeline.versions_) >= {"sklearn-ddpm", "torch"}
    predicted = pipeline.predict(list(images))
    for i in range(3):
        np.testing.assert_array_equal(predicted[i], seg.predict(i))
    resumed = InteractiveSegmenter.load(path)
    assert resumed.class_names == ["background", "square"] and resumed.n_images == 0 and not resumed.needs_fit
    resumed.add_images(list(images))
    np.testing.assert_array_equal(resumed.predict(1), seg.predict(1))
    # Continue labelling: a refit from the loaded session equals one of the original session.
    resumed.add_labels(0, sparse[0]).add_labels(2, sparse[2]).add_labels(1, sparse[1]).fit()
    seg.add_labels(1, sparse[1]).fit()
    np.testing.assert_array_equal(resumed.predict(1), seg.predict(1))
    assert resumed.pipeline_[-1].min_class_pixels == 0


def test_suggest_finds_planted_disagreement(session, monkeypatch):
    seg, _, masks = session
    seg.add_labels(0, scribbles(masks)[0]).fit()
    rng = np.random.default_rng(0)
    planted = [rng.uniform(0, 0.01, (40, 40)) for _ in range(3)]
    planted[2][10:16, 20:30] = 0.3  # a large disagreeing region: 60 pixels
    planted[1][30:33, 5:8] = 0.6  # a small, stronger one: 9 pixels
    planted[0][0:40, 0:3] = 0.5  # strong, but labelled: not suggested
    labels = seg.labels(0)
    labels[:, :3] = 0
    seg.set_labels(0, labels)
    monkeypatch.setattr(seg, "uncertainty", lambda i: planted[i])
    by_sum = seg.suggest(k=2, min_pixels=4, threshold=0.1)
    assert [s.image for s in by_sum] == [2, 1]
    assert by_sum[0].bbox == (10, 20, 16, 30) and by_sum[0].n_pixels == 60
    assert by_sum[0].score == pytest.approx(60 * 0.3)
    assert seg.suggest(k=1, score="mean", min_pixels=4, threshold=0.1)[0].image == 1
    assert [s.image for s in seg.suggest(k=5, min_pixels=10, threshold=0.1)] == [2]
    # "auto": the top 5 % of the unlabelled pixels (240 here), so the planted regions lead
    assert [s.image for s in seg.suggest(k=2, min_pixels=4)] == [2, 1]
    assert seg.suggest(k=5, threshold=0.7) == []


def test_warm_start_is_not_implemented_and_says_so(tiny_backbone):
    images, masks = make_squares(n_images=2)
    seg = InteractiveSegmenter(tiny_backbone, warm_start=True, **FAST)
    seg.add_images(list(images))
    with pytest.warns(UserWarning, match="warm_start=True is not implemented"):
        seg.extract_features()
    assert InteractiveSegmenter().max_epochs == 6 and not InteractiveSegmenter().warm_start
    assert InteractiveSegmenter().mlp_batch_size == 256


def test_mlp_batch_size_is_the_classifiers_and_equals_make_segmenter(tiny_backbone, tmp_path):
    images, masks = make_squares(n_images=3)
    sparse = scribbles(masks, per_class=20)
    seg = InteractiveSegmenter(tiny_backbone, class_names=["background", "square"], mlp_batch_size=32, **FAST)
    seg.add_images(list(images))
    for i in range(3):
        seg.add_labels(i, sparse[i])
    seg.fit()
    clf = seg.pipeline_[-1]
    assert clf.batch_size == 32 and clf.lr_ == pytest.approx(1e-3) and clf.patience_ == 50
    # every epoch takes ceil(pixels / 32) steps (the default batch of 64 takes half as many)
    assert clf.n_iter_ == clf.max_epochs * -(-clf.n_training_pixels_ // 32) > clf.max_epochs
    pipeline = make_segmenter(tiny_backbone, n_classes=2, **FAST).set_params(clf__batch_size=32)
    expected = pipeline.fit(list(images), list(sparse)).predict(list(images))
    for i in range(3):
        np.testing.assert_array_equal(seg.predict(i), expected[i])
    # a loaded session keeps it
    assert InteractiveSegmenter.load(seg.save(tmp_path / "seg.skddpm")).mlp_batch_size == 32
    # the default: batch 256 under the large-batch rule (lr 1e-3 * sqrt(256 / 64), patience 50 * 64 / 256)
    default = InteractiveSegmenter(tiny_backbone, class_names=["background", "square"], **FAST)
    default.add_images(list(images))
    default.add_labels(0, sparse[0]).add_labels(1, sparse[1]).fit()
    assert default.pipeline_[-1].batch_size == 256
    assert default.pipeline_[-1].lr_ == pytest.approx(2e-3) and default.pipeline_[-1].patience_ == 12
    with pytest.raises(ValueError, match="mlp_batch_size"):
        InteractiveSegmenter(tiny_backbone, mlp_batch_size=0, **FAST).extract_features()
