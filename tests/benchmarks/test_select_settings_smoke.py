"""benchmarks/select_settings.py runs end to end on tiny settings (its figures are not checked here)."""

import json


def test_select_settings_quick(tmp_path, load):
    script = load("select_settings")
    out = tmp_path / "s.json"
    assert script.main(["--quick", "--threads", "1", "--out", str(out)]) == out
    record = json.loads(out.read_text())
    selection = record["selection"]
    table = selection["cv_results"]
    # the CV table that made the choice, and the choice is its best row
    assert selection["best_score"] == max(table["mean_test_score"])
    assert {f["method"] for f in record["test_fits"]} == {"selected", "defaults"}
    assert set(record["summary"]["selected"]["per_class_iou"]) == {"background", "horse"}


def test_a_methods_seeds_share_its_test_features(tmp_path, load, monkeypatch):
    """One extraction of the test images per method; every later seed predicts from it."""
    script = load("select_settings")
    from sklearn.pipeline import Pipeline

    extracted = []
    transform = Pipeline.transform

    def count(self, X, **params):
        extracted.append(len(X))
        return transform(self, X, **params)

    monkeypatch.setattr(Pipeline, "transform", count)
    out = tmp_path / "s.json"
    assert script.main(["--quick", "--threads", "1", "--out", str(out)]) == out
    fits = json.loads(out.read_text())["test_fits"]
    assert [(f["method"], f["seed"], f["test_features_extracted"]) for f in fits] == [
        ("selected", 0, True), ("defaults", 0, True), ("selected", 1, False), ("defaults", 1, False)]
    assert len(extracted) == 2


def test_shared_features_give_each_seeds_own_prediction(tiny_backbone):
    """Why sharing is exact: with the noise seed fixed, another fit's transformer gives the same features."""
    import numpy as np

    from sklearn_ddpm import make_segmenter
    from tests.conftest import make_squares

    images, masks = make_squares(4, (32, 32))
    settings = dict(blocks=(6,), steps=(10,), n_estimators=1, max_epochs=5, max_pixels_per_image=100)
    first = make_segmenter(tiny_backbone, random_state=0, **settings).fit(images[:3], masks[:3])
    second = make_segmenter(tiny_backbone, random_state=0, **settings)
    second.set_params(clf__random_state=1).fit(images[:3], masks[:3])
    own = second.predict(images[3:])
    shared = second[-1].predict(first[:-1].transform(images[3:]))
    assert all(np.array_equal(a, b) for a, b in zip(own, shared))
