"""The rare-classes benchmark: its CV-fitted bias, and an end-to-end run on tiny settings (figures not checked)."""

import numpy as np


def test_fit_bias_raises_an_under_predicted_class(load):
    bench = load("rare_classes")
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 3, size=(8, 8)) for _ in range(3)]
    # class 2's probability is always below class 0's: unbiased, it is never predicted
    log_probs = []
    for m in masks:
        p = np.full((*m.shape, 3), 0.1)
        p[..., 0] = 0.5
        p[m == 1, 1] = 0.8
        p[m == 2, 2] = 0.4
        log_probs.append(np.log(p))
    before = bench._miou(bench._confusion(masks, [lp.argmax(-1) for lp in log_probs], 3))
    bias, after = bench.fit_bias(log_probs, masks, 3)
    assert bias[0] == 0 and bias[2] > 0
    assert after > before and after == 1.0


def test_rare_classes_quick_run_scores_every_class_and_the_bias(tmp_path, load):
    bench = load("rare_classes")
    record = bench.main(["--quick", "--threads", "1", "--out", str(tmp_path / "r.json"), "--cache", str(tmp_path)])
    results = record["results"]
    assert set(results) == {"default", "class-weighted", "cap 1000", "default + CV bias"}
    for row in results.values():
        assert set(row["per_class_iou"]) == set(record["class_names"])
        assert len(row["fold_miou"]) == record["folds"]
    # one bias per held-out fold, each fitted on the other folds' photos only
    assert len(results["default + CV bias"]["bias_per_fold"]) == record["folds"]


def test_pixel_caps_quick_ccp_crop_keeps_several_classes(tmp_path, load):
    # a top-left crop of CCP photos is background only and the classifier refused to fit
    bench = load("pixel_caps")
    record = bench.main(["--dataset", "ccp", "--quick", "--threads", "1", "--out", str(tmp_path / "p.json")])
    assert record["chosen"]["label"] in {row["label"] for row in record["rows"]}
    assert "test" not in record and "test_default" not in record


def test_pixel_caps_same_treats_missing_entries_as_the_defaults(load):
    bench = load("pixel_caps")
    assert bench._same({"clf__max_pixels_per_image": None}, bench.DEFAULT_PARAMS)
    assert not bench._same({"clf__max_pixels_per_image": 1000}, bench.DEFAULT_PARAMS)


def test_pixel_caps_takes_the_folds_rare_classes_fitted(tmp_path, load):
    rare = load("rare_classes")
    rare.main(["--quick", "--threads", "1", "--out", str(tmp_path / "r.json"), "--cache", str(tmp_path)])
    bench = load("pixel_caps")
    record = bench.main(["--dataset", "ccp", "--quick", "--threads", "1", "--caps", "1000", "--class-caps", "500",
                         "--all-pixels-folds", "0", "--rows-from", str(tmp_path / "r.json"),
                         "--out", str(tmp_path / "p.json")])
    import json

    fits = json.loads((tmp_path / "r.json").read_text())["fits"]
    rows = {row["label"]: row for row in record["rows"]}
    assert rows["class cap 500"]["fold_miou"] == [fits[f"default/fold{k}"]["miou"] for k in range(2)]
    assert rows["cap 1000"]["fold_miou"] == [fits[f"cap 1000/fold{k}"]["miou"] for k in range(2)]
    assert all("rare_classes" in row["source"] for row in rows.values())


def test_pixel_caps_candidates_lift_the_default_class_cap(load):
    # with max_pixels_per_class=500 the default, "cap 1000" and "all pixels" must set it to None
    import argparse

    bench = load("pixel_caps")
    args = argparse.Namespace(folds=2, caps=[1000], class_caps=[500], all_pixels_folds=1)
    params = {label: p for label, p, _ in bench._candidates(args)}
    assert params["cap 1000"]["clf__max_pixels_per_class"] is None
    assert params["all pixels"] == {"clf__max_pixels_per_image": None, "clf__max_pixels_per_class": None}
