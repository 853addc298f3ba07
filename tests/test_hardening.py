"""Bad input through the Python API: each case fails with a message naming the culprit, or works."""

import os
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, miou_score, per_class_iou
from sklearn_ddpm import load_segmenter, make_segmenter
from sklearn_ddpm.io import save_model
from sklearn_ddpm.plotting import label_palette, label_to_color, overlay
from sklearn_ddpm.utils._atomic import atomic_joblib_dump, atomic_write, ensure_directory

from .conftest import make_squares


def _pipeline(backbone, **clf_params):
    params = dict(n_estimators=2, max_epochs=2, max_pixels_per_image=200, min_class_pixels=0, random_state=0)
    params.update(clf_params)
    return Pipeline([("features", DDPMFeatureTransformer(backbone, blocks=(6, 9), steps=(50,), memory=None)),
                     ("clf", MLPEnsembleClassifier(**params))])


@pytest.fixture(scope="module")
def fitted(tiny_backbone):
    images, masks = make_squares(n_images=4, size=(24, 24))
    return _pipeline(tiny_backbone).fit(images, masks), images, masks


# -- images through the transformer ---------------------------------------------------------------
@pytest.mark.parametrize("bad, error, match", [
    (np.full((1, 8, 8, 3), np.nan, np.float32), ValueError, r"X\[0\] contains NaN"),
    (np.full((1, 8, 8, 3), np.inf, np.float64), ValueError, r"X\[0\] contains NaN or infinite"),
    (np.full((1, 8, 8, 3), 3.0), ValueError, r"float images must be in \[0, 1\]"),
    (np.full((1, 8, 8, 3), "a"), TypeError, r"X\[0\] has dtype <U1"),
    ([np.zeros((8, 8), np.uint8)], ValueError, r"X\[0\] has shape \(8, 8\).*grayscale"),
    ([np.zeros((8, 8, 4), np.uint8)], ValueError, r"RGBA"),
    (np.zeros((8, 8, 3), np.uint8), ValueError, r"For a single image use X\[None\]"),
    ([np.full((8, 8, 3), 300, np.int32)], ValueError, "outside 0-255"),
])
def test_transformer_rejects_bad_images(tiny_backbone, bad, error, match):
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=(6,), steps=(50,), memory=None).fit()
    with pytest.raises(error, match=match):
        transformer.transform(bad)


# -- features and masks through the classifier ----------------------------------------------------
def test_classifier_rejects_nan_features():
    features = np.zeros((2, 6, 6, 4), np.float32)
    features[1, 2, 3, 0] = np.nan
    masks = np.zeros((2, 6, 6), int)
    masks[:, 3:] = 1
    with pytest.raises(ValueError, match="NaN or infinite"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1).fit(features, masks)
    with pytest.raises(ValueError, match="infinity"):
        MLPEnsembleClassifier(n_estimators=1, max_epochs=1).fit(np.full((10, 3), np.inf), np.arange(10) % 2)


def test_classifier_rejects_bad_masks():
    features = np.zeros((2, 6, 6, 4), np.float32)
    clf = MLPEnsembleClassifier(n_estimators=1, max_epochs=1)
    masks = np.zeros((2, 6, 6))
    masks[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"y\[1\] contains NaN"):
        clf.fit(features, masks)
    with pytest.raises(ValueError, match=r"y\[0\] has non-integer labels"):
        clf.fit(features, np.full((2, 6, 6), 0.5))
    with pytest.raises(TypeError, match=r"y\[0\] has dtype <U1"):
        clf.fit(features, np.full((2, 6, 6), "a"))
    with pytest.raises(ValueError, match=r"y\[0\] is 6x5 \(width x height\) but its image is 6x6"):
        clf.fit(features, [np.zeros((5, 6), int), np.zeros((6, 6), int)])
    with pytest.raises(ValueError, match=r"y\[0\] has negative labels \[-1\]"):
        clf.fit(features, np.full((2, 6, 6), -1))


def test_labels_beyond_n_classes_are_an_error(tiny_backbone):
    images, masks = make_squares(n_images=2, size=(16, 16))
    masks[1, 0, 0] = 2
    with pytest.raises(ValueError, match=r"y\[1\] has labels \[2\] outside 0\.\.1 \(n_classes=2\)"):
        _pipeline(tiny_backbone, n_classes=2).fit(images, masks)


def test_only_one_class_is_an_error(tiny_backbone):
    images, _ = make_squares(n_images=2, size=(16, 16))
    masks = np.zeros((2, 16, 16), int)
    masks[0, :2] = 255
    with pytest.raises(ValueError, match="only one class"):
        _pipeline(tiny_backbone).fit(images, masks)


def test_class_missing_from_some_images_works(tiny_backbone):
    images, masks = make_squares(n_images=3, size=(16, 16))
    masks[0][masks[0] == 1] = 2  # class 2 lives in image 0 only, class 1 in images 1-2 only
    pipeline = _pipeline(tiny_backbone).fit(images, masks)
    assert pipeline.classes_.tolist() == [0, 1, 2]
    assert set(np.unique(pipeline.predict(images))) <= {0, 1, 2}


def test_images_of_mixed_sizes_predict_at_their_own_size(tiny_backbone):
    sizes = [(20, 28), (33, 17), (24, 24)]
    images, masks = [], []
    for i, size in enumerate(sizes):
        im, m = make_squares(n_images=1, size=size, seed=i)
        images.append(im[0])
        masks.append(m[0])
    pipeline = _pipeline(tiny_backbone).fit(images, masks)
    predictions = pipeline.predict(images)
    assert isinstance(predictions, list)
    assert [p.shape for p in predictions] == sizes
    assert 0 <= pipeline.score(images, masks) <= 1


def test_unfitted_pipeline_raises_not_fitted(tiny_backbone, tmp_path):
    images, _ = make_squares(n_images=1, size=(16, 16))
    pipeline = _pipeline(tiny_backbone)
    with pytest.raises(NotFittedError):
        pipeline.predict(images)
    save_model(pipeline, tmp_path / "unfitted.skddpm")
    with pytest.raises(NotFittedError):
        load_segmenter(tmp_path / "unfitted.skddpm")


def test_more_classes_in_evaluation_count_as_errors(fitted):
    pipeline, images, masks = fitted
    masks = masks.copy()
    masks[0][masks[0] == 1] = 2  # a class the model never saw
    predictions = pipeline.predict(images)
    ious = per_class_iou(masks, predictions)
    assert len(ious) == 3 and ious[2] == 0.0
    assert pipeline.score(images, masks) == pytest.approx(miou_score(masks, predictions))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_without_cuda_fails_at_fit(tiny_backbone):
    images, masks = make_squares(n_images=2, size=(16, 16))
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        _pipeline(tiny_backbone).set_params(features__device="cuda").fit(images, masks)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        _pipeline(tiny_backbone, device="cuda").fit(images, masks)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_fitted_model_falls_back_to_cpu(fitted, tmp_path):
    pipeline, images, _ = fitted
    expected = pipeline.predict(images)
    # A file written on a GPU machine records device="cuda" in both steps.
    pipeline.set_params(features__device="cuda", clf__device="cuda")
    try:
        save_model(pipeline, tmp_path / "gpu.skddpm")
        joblib.dump(pipeline, tmp_path / "gpu.joblib")
        with pytest.warns(UserWarning, match="CUDA is not available"):
            np.testing.assert_array_equal(pipeline.predict(images), expected)
        for path, trust in ((tmp_path / "gpu.skddpm", False), (tmp_path / "gpu.joblib", True)):
            with pytest.warns(UserWarning, match="CUDA is not available"):
                loaded = load_segmenter(path, trust_pickle=trust)
            assert loaded[-1].device == "cpu" and loaded[0].device == "cpu"
            np.testing.assert_array_equal(loaded.predict(images), expected)
            with pytest.raises(RuntimeError, match="CUDA is not available"):
                load_segmenter(path, device="cuda", trust_pickle=trust)
    finally:
        pipeline.set_params(features__device="cpu", clf__device="cpu")


def test_version_mismatch_warns_once_per_file(fitted, tmp_path, monkeypatch):
    from sklearn_ddpm.utils import _persistence

    pipeline, _, _ = fitted
    real = _persistence.current_versions()
    fake = {**real, "torch": "0.0.1", "diffusers": "0.0.2"}
    # Every record a pickle can carry (the pipeline's and each estimator's) claims other versions.
    with monkeypatch.context() as patch:
        patch.setattr(_persistence, "current_versions", lambda: dict(fake))
        pipeline.versions_ = dict(fake)
        try:
            joblib.dump(pipeline, tmp_path / "old.joblib")
            save_model(pipeline, tmp_path / "old.skddpm")
        finally:
            del pipeline.versions_
    for name, trust in (("old.joblib", True), ("old.skddpm", False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_segmenter(tmp_path / name, trust_pickle=trust)
        about_versions = [w for w in caught if "0.0.1" in str(w.message)]
        assert len(about_versions) == 1, [str(w.message) for w in about_versions]
        (warning,) = about_versions
        assert issubclass(warning.category, _persistence.VersionMismatchWarning)
        message = str(warning.message)
        assert name in message and "torch 0.0.1" in message and "diffusers 0.0.2" in message
        assert f"now {real['torch']}" in message


def test_same_versions_do_not_warn(fitted, tmp_path):
    save_model(fitted[0], tmp_path / "same.skddpm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_segmenter(tmp_path / "same.skddpm")


def test_load_segmenter_batch_size_counts_images(tiny_backbone, tmp_path):
    images, masks = make_squares(n_images=2, size=(16, 16))
    pipeline = _pipeline(tiny_backbone).set_params(features__steps=(50, 150), features__batch_size=2)
    save_model(pipeline.fit(images, masks), tmp_path / "m.skddpm")
    assert load_segmenter(tmp_path / "m.skddpm", batch_size=3)[0].batch_size == 3
    assert load_segmenter(tmp_path / "m.skddpm")[0].batch_size == 2


def test_make_segmenter_assembles_the_pipeline(tiny_backbone):
    segmenter = make_segmenter(tiny_backbone, blocks=(6, 9), steps=(50,), batch_size=3, n_estimators=2,
                               max_epochs=2, max_pixels_per_image=200, min_class_pixels=0, random_state=4)
    assert [name for name, _ in segmenter.steps] == ["features", "clf"]
    features, clf = segmenter[0], segmenter[-1]
    assert isinstance(features, DDPMFeatureTransformer) and isinstance(clf, MLPEnsembleClassifier)
    assert features.model is tiny_backbone and features.blocks == (6, 9) and features.steps == (50,)
    assert features.batch_size == 3 and features.random_state == 4 and clf.random_state == 4
    assert (clf.n_estimators, clf.max_epochs, clf.max_pixels_per_image, clf.min_class_pixels) == (2, 2, 200, 0)
    images, masks = make_squares(n_images=2, size=(16, 16))
    assert segmenter.fit(images, masks).predict(images)[0].shape == (16, 16)


def test_make_segmenter_defaults_are_the_estimators():
    segmenter = make_segmenter()
    for step, cls in ((segmenter[0], DDPMFeatureTransformer), (segmenter[-1], MLPEnsembleClassifier)):
        defaults = cls().get_params()
        for name in ("batch_size", "steps", "blocks", "image_size", "n_estimators", "max_epochs",
                     "min_class_pixels", "max_pixels_per_image", "max_pixels_per_class", "device"):
            if name in defaults and not (cls is MLPEnsembleClassifier and name == "batch_size"):
                assert step.get_params()[name] == defaults[name], name
    # the classifier defaults make_segmenter overrides, chosen by CV (ensemble_speed.json,
    # standardize_default.json)
    assert segmenter[-1].batch_size == 256 != MLPEnsembleClassifier().batch_size
    assert segmenter[-1].standardize is True and MLPEnsembleClassifier().standardize is False


def test_corrupt_or_foreign_model_files(tmp_path):
    (tmp_path / "junk.joblib").write_bytes(b"\x80\x04 not really a pickle")
    with pytest.raises(ValueError, match="junk.joblib is a pickle file.*--trust-pickle"):
        load_segmenter(tmp_path / "junk.joblib")
    with pytest.raises(ValueError, match="junk.joblib is not a readable model file"):
        load_segmenter(tmp_path / "junk.joblib", trust_pickle=True)
    joblib.dump({"a": 1}, tmp_path / "dict.joblib")
    save_model({"a": 1}, tmp_path / "dict.skddpm")
    with pytest.raises(ValueError, match="holds a dict, not a Pipeline"):
        load_segmenter(tmp_path / "dict.joblib", trust_pickle=True)
    with pytest.raises(ValueError, match="holds a dict, not a Pipeline"):
        load_segmenter(tmp_path / "dict.skddpm")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_segmenter(tmp_path / "missing.joblib")


# -- atomic writes ----------------------------------------------------------------------------------
def test_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_joblib_dump_round_trips(tmp_path):
    atomic_joblib_dump({"x": np.arange(3)}, tmp_path / "m.joblib")
    assert joblib.load(tmp_path / "m.joblib")["x"].tolist() == [0, 1, 2]
    assert oct((tmp_path / "m.joblib").stat().st_mode & 0o777) != oct(0o600)


def test_output_folder_under_a_file(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a_file/out.*is a file, not a folder"):
        ensure_directory(tmp_path / "a_file" / "out")


# -- plotting ----------------------------------------------------------------------------------------
def test_palette_and_overlay():
    palette = label_palette()
    assert palette.shape == (256, 3) and len({tuple(c) for c in palette}) == 256
    labels = np.array([[0, 1], [2, 255]])
    colored = label_to_color(labels)
    assert colored[1, 1].tolist() == [255, 255, 255] and colored[0, 1].tolist() == palette[1].tolist()
    image = np.full((2, 2, 3), 100, np.uint8)
    blended = overlay(image, labels)
    assert blended[0, 0].tolist() == [100, 100, 100]  # background stays the photo
    assert blended[0, 1].tolist() == np.round(0.5 * 100 + 0.5 * palette[1]).astype(int).tolist()
    pytest.importorskip("matplotlib")
    big = overlay(image, labels, uncertainty=np.zeros((2, 2)), class_names=["bg", "horse", "sky"])
    assert big.dtype == np.uint8 and big.shape[1] > 4 and big.shape[0] > 2
    with pytest.raises(ValueError, match="labels have shape"):
        overlay(image, labels[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="integer class indices"):
            label_to_color(np.zeros((2, 2)))
