"""The safe model format: every estimator and backbone kind round-trips; crafted and future files are refused."""

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, load_segmenter, make_segmenter
from sklearn_ddpm.backbone import tiny_unet
from sklearn_ddpm.io import (ModelFormatError, UnsafeModelFileError, UnsupportedValueError, dumps_model, load_model,
                             loads_model, model_file_format, save_model)
from sklearn_ddpm.postprocessing import GuidedFilter
from sklearn_ddpm.synthetic import SegmentationNetworkClassifier
from sklearn_ddpm.utils._persistence import VersionMismatchWarning
from tests.conftest import make_squares


def _round_trip(model, tmp_path, name="m.skddpm"):
    path = save_model(model, tmp_path / name)
    assert model_file_format(path) == "safe"
    return load_model(path)


def _same_predictions(a, b, X):
    np.testing.assert_array_equal(np.asarray(b.predict(X)), np.asarray(a.predict(X)))
    np.testing.assert_array_equal(np.asarray(b.predict_proba(X)), np.asarray(a.predict_proba(X)))


@pytest.fixture(scope="module")
def squares():
    return make_squares(4, size=(32, 32), seed=0)


@pytest.fixture(scope="module")
def default_pipeline(tiny_backbone, squares):
    images, masks = squares
    pipeline = make_segmenter(tiny_backbone, blocks=(3, 6), steps=(50,), n_estimators=2, max_epochs=2,
                              max_pixels_per_image=300)
    return pipeline.fit(images, masks)


def test_default_pipeline_round_trips_with_identical_predictions(default_pipeline, squares, tmp_path):
    images, _ = squares
    default_pipeline.class_names_ = ["background", "square"]
    loaded = _round_trip(default_pipeline, tmp_path)
    _same_predictions(default_pipeline, loaded, images)
    np.testing.assert_array_equal(loaded[-1].predict_uncertainty(loaded[0].transform(images)),
                                  default_pipeline[-1].predict_uncertainty(default_pipeline[0].transform(images)))
    assert isinstance(loaded[-1].refine, GuidedFilter) and loaded[-1].refine.get_params() == \
        default_pipeline[-1].refine.get_params()
    assert loaded.class_names_ == ["background", "square"]
    # every parameter and fitted attribute comes back (the skorch net and the backbone are checked by predictions)
    for ours, theirs in zip(default_pipeline, loaded):
        assert repr(theirs.get_params(deep=False)) == repr(ours.get_params(deep=False))
        for name, value in vars(ours).items():
            if name.endswith("_") and name not in ("net_", "backbone_"):
                assert repr(getattr(theirs, name)) == repr(value), name
    # the model parameter was the backbone itself: one object, saved once
    assert loaded[0].model is loaded[0].backbone_
    assert loaded[0].backbone_.fingerprint == default_pipeline[0].backbone_.fingerprint
    loaded[0].backbone_._fingerprint = None  # recomputed from the restored weights
    assert loaded[0].backbone_.fingerprint == default_pipeline[0].backbone_.fingerprint


def test_loading_leaves_the_global_random_state_alone(default_pipeline, tmp_path):
    path = save_model(default_pipeline, tmp_path / "m.skddpm")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(path)
    assert torch.equal(torch.rand(3), expected)


def test_tabular_classifier_with_routed_and_auto_settings(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 3, 7)
    clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=2, standardize=True, class_weight="balanced",
                                optimizer=torch.optim.AdamW, optimizer__weight_decay=1e-3, voting="soft",
                                random_state=np.random.RandomState(4)).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    _same_predictions(clf, loaded, X)
    assert loaded.optimizer is torch.optim.AdamW and loaded.optimizer__weight_decay == 1e-3
    assert loaded.get_params()["optimizer__weight_decay"] == 1e-3
    np.testing.assert_array_equal(loaded.classes_, [3, 7])
    assert loaded.random_state.get_state()[1].tolist() == clf.random_state.get_state()[1].tolist()
    # the optimizer state and history come back too: training can go on from where it stopped
    assert loaded.net_.optimizer_.state_dict()["state"].keys() == clf.net_.optimizer_.state_dict()["state"].keys()
    assert len(loaded.net_.history) == len(clf.net_.history)


def test_segmentation_network_round_trips(squares, tmp_path):
    images, masks = squares
    net = SegmentationNetworkClassifier(image_size=32, block_out_channels=(8, 16), max_epochs=1, batch_size=4,
                                        random_state=0).fit(images, masks)
    loaded = _round_trip(net, tmp_path)
    _same_predictions(net, loaded, images)
    assert loaded.n_parameters_ == net.n_parameters_


def test_transformer_given_a_unet_object_and_flip_tta(squares, tmp_path):
    images, masks = squares
    unet = tiny_unet()
    pipeline = make_segmenter(unet, blocks=(3,), steps=(50, 150), n_estimators=2, max_epochs=1, flip_tta=True,
                              refine=None).fit(images, masks)
    loaded = _round_trip(pipeline, tmp_path)
    _same_predictions(pipeline, loaded, images)
    # as with pickle, the UNet passed as `model` is the one inside the backbone, stored once
    assert loaded[0].model is loaded[0].backbone_.unet


def test_unfitted_estimators_round_trip(tmp_path):
    transformer = DDPMFeatureTransformer(None, steps=(10, 20), image_size=(64, 32))
    loaded = _round_trip(transformer, tmp_path)
    assert loaded.get_params() == transformer.get_params()


def test_guided_diffusion_backbone_round_trips(squares, tmp_path):
    pytest.importorskip("guided_diffusion")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from guided_diffusion.script_util import create_model
    from sklearn_ddpm.backbone import convert_guided_diffusion
    from sklearn_ddpm.backbone._backbone import plain_config

    flags = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", learn_sigma=True,
                 attention_resolutions="16", num_heads=2, num_head_channels=-1, use_scale_shift_norm=True,
                 resblock_updown=False)
    torch.manual_seed(0)
    backbone = convert_guided_diffusion(create_model(**flags).state_dict(), num_heads=2, attention_resolutions="16",
                                        noise_schedule="cosine")
    images, masks = squares
    pipeline = make_segmenter(backbone, blocks=(1, 3), steps=(50,), n_estimators=2, max_epochs=1).fit(images, masks)
    loaded = _round_trip(pipeline, tmp_path)
    _same_predictions(pipeline, loaded, images)
    assert type(loaded[0].backbone_.scheduler) is type(backbone.scheduler)
    assert plain_config(loaded[0].backbone_.scheduler) == plain_config(backbone.scheduler)


def test_latent_backbone_round_trips(tmp_path):
    pytest.importorskip("transformers")
    from sklearn_ddpm.backbone import LatentBackbone
    from tests.backbone.test_latent import IMAGE, make_components

    (tmp_path / "tokenizer").mkdir()
    components = make_components(tmp_path / "tokenizer")
    backbone = LatentBackbone(**components, source="tiny-sd")
    images, masks = make_squares(3, size=(IMAGE, IMAGE))
    pipeline = make_segmenter(backbone, blocks=(5, 8), steps=(50,), prompt="a horse", n_estimators=2,
                              max_epochs=1).fit(list(images), list(masks))
    loaded = _round_trip(pipeline, tmp_path)
    assert isinstance(loaded[0].backbone_, LatentBackbone) and loaded[0].prompt == "a horse"
    _same_predictions(pipeline, loaded, images)
    loaded[0].backbone_._fingerprint = None
    assert loaded[0].backbone_.fingerprint == pipeline[0].backbone_.fingerprint


# -- what the safe loader refuses --------------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: what a crafted model file could do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "the payload ran"))


@pytest.mark.parametrize("writer", ["pickle", "joblib", "joblib-compressed"])
def test_a_crafted_pickle_is_refused_without_running(writer, tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.skddpm"  # the name does not matter: the content decides
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        joblib.dump(_Payload(marker), path, compress=3 if writer == "joblib-compressed" else 0)
    for load in (load_model, load_segmenter):
        with pytest.raises(UnsafeModelFileError, match="evil.skddpm.*trust_pickle=True.*--trust-pickle"):
            load(path)
    assert not marker.exists()
    # the test can fail: the same file does run its payload when trusted
    with pytest.raises(Exception):
        load_segmenter(path, trust_pickle=True)
    assert marker.read_text() == "the payload ran"


def test_a_trusted_joblib_file_still_loads(default_pipeline, squares, tmp_path):
    joblib.dump(default_pipeline, tmp_path / "seg.joblib")
    assert model_file_format(tmp_path / "seg.joblib") == "pickle"
    loaded = load_segmenter(tmp_path / "seg.joblib", trust_pickle=True)
    np.testing.assert_array_equal(loaded.predict(squares[0]), default_pipeline.predict(squares[0]))


def _rewrite(data, edit):
    """The file ``data`` with its model.json passed through ``edit`` (the header stays valid)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "model.json":
                content = json.dumps(edit(json.loads(content))).encode()
            target.writestr(info, content)
    return buffer.getvalue()


def _object_nodes(node):
    if isinstance(node, dict):
        if "$object" in node:
            yield node
        for value in node.values():
            yield from _object_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _object_nodes(value)


@pytest.fixture(scope="module")
def small_file():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)).astype(np.float32), rng.integers(0, 2, 50)
    return dumps_model(MLPEnsembleClassifier(n_estimators=1, max_epochs=1, random_state=0).fit(X, y))


@pytest.mark.parametrize("name", ["os:system", "builtins:eval", "subprocess:Popen", "sklearn_ddpm.utils._atomic:atomic_write",
                                  "sklearn_ddpm.io._format:save_model", "torch:load", "sklearn_ddpm:__class__"])
def test_a_crafted_safe_file_naming_other_code_is_refused(small_file, name, tmp_path):
    def as_object(document):
        next(_object_nodes(document["root"]))["$object"] = name
        return document

    def as_value(document):
        state = next(_object_nodes(document["root"]))["state"]["$dict"]
        state["optimizer"] = {"$type": name}
        return document

    for edit in (as_object, as_value):
        with pytest.raises(ModelFormatError, match="not a trusted class or function.*refuses"):
            loads_model(_rewrite(small_file, edit), "crafted.skddpm")


def test_a_crafted_backbone_state_cannot_pick_other_library_attributes(default_pipeline):
    def edit(document):
        for node in _object_nodes(document["root"]):
            if node["$object"] == "sklearn_ddpm:Backbone":
                node["state"]["$dict"]["scheduler_class"] = "DiffusionPipeline"
        return document

    with pytest.raises(ModelFormatError, match="DiffusionPipeline' is not a SchedulerMixin"):
        loads_model(_rewrite(dumps_model(default_pipeline[0]), edit))


def test_files_from_a_newer_version_fail_clearly(small_file):
    def newer_format(document):
        document["format_version"] = 99
        document["written_by"]["sklearn-ddpm"] = "9.0"
        return document

    with pytest.raises(ModelFormatError, match="model format version 99, written by sklearn-ddpm 9.0.*Upgrade"):
        loads_model(_rewrite(small_file, newer_format), "new.skddpm")

    def unknown_parameter(document):
        next(_object_nodes(document["root"]))["state"]["$dict"]["shiny_new_option"] = 3
        return document

    with pytest.raises(ModelFormatError, match="MLPEnsembleClassifier.*shiny_new_option.*version that wrote it"):
        loads_model(_rewrite(small_file, unknown_parameter))

    def unknown_class(document):
        next(_object_nodes(document["root"]))["$object"] = "sklearn_ddpm:FutureClassifier"
        return document

    with pytest.raises(ModelFormatError, match="FutureClassifier' does not exist.*another version"):
        loads_model(_rewrite(small_file, unknown_class))

    def unknown_kind(document):
        next(_object_nodes(document["root"]))["state"]["$dict"]["lr"] = {"$complex": [1, 2]}
        return document

    with pytest.raises(ModelFormatError, match=r"unknown kind of value '\$complex'.*newer sklearn-ddpm"):
        loads_model(_rewrite(small_file, unknown_kind))


def test_a_file_from_before_a_parameter_was_added_takes_its_default(small_file):
    # As a file written before MLPEnsembleClassifier had `predict_batch_size` would be.
    def older(document):
        del next(_object_nodes(document["root"]))["state"]["$dict"]["predict_batch_size"]
        return document

    loaded = loads_model(_rewrite(small_file, older))
    assert loaded.predict_batch_size == MLPEnsembleClassifier().predict_batch_size
    assert "predict_batch_size" in loaded.get_params()
    loaded.predict(np.zeros((2, 3), np.float32))


def test_damaged_files_fail_clearly(small_file, tmp_path):
    path = tmp_path / "cut.skddpm"
    path.write_bytes(small_file[: len(small_file) // 2])
    with pytest.raises(ModelFormatError, match="cut.skddpm is a damaged sklearn-ddpm model file"):
        load_model(path)
    (tmp_path / "junk.bin").write_bytes(b"GIF89a not a model")
    with pytest.raises(UnsafeModelFileError, match="junk.bin is not a sklearn-ddpm model file"):
        load_model(tmp_path / "junk.bin")
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights.pt")  # a zip too, but not ours
    assert model_file_format(tmp_path / "weights.pt") == "unknown"
    with pytest.raises(FileNotFoundError, match="missing.skddpm"):
        load_model(tmp_path / "missing.skddpm")


def test_other_versions_warn_once_naming_the_file(small_file, tmp_path):
    def older_torch(document):
        next(_object_nodes(document["root"]))["state"]["$dict"]["_sklearn_ddpm_versions"]["$dict"]["torch"] = "0.0.1"
        return document

    path = tmp_path / "old.skddpm"
    path.write_bytes(_rewrite(small_file, older_torch))
    with pytest.warns(VersionMismatchWarning, match="old.skddpm was saved with torch 0.0.1") as record:
        load_model(path)
    assert len([w for w in record if w.category is VersionMismatchWarning]) == 1


def test_values_the_format_cannot_store_fail_before_writing(tiny_backbone, tmp_path):
    from sklearn_ddpm import ActivationCache

    transformer = DDPMFeatureTransformer(tiny_backbone, memory=ActivationCache())
    with pytest.raises(UnsupportedValueError, match=r"\['memory'\].*ActivationCache.*memory=None"):
        save_model(transformer, tmp_path / "m.skddpm")
    assert not list(tmp_path.iterdir())
    with pytest.raises(UnsupportedValueError, match="lambda"):
        save_model(GuidedFilter().set_params(radius=lambda: 1), tmp_path / "m.skddpm")
