"""The warm-start benchmark runs end to end on tiny settings (its figures are not checked here)."""

import numpy as np


def test_refit_warm_start_quick(tmp_path, load):
    module = load("refit_warm_start")
    payload = module.main(["--quick", "--threads", "1", "--out", str(tmp_path / "w.json")])
    assert (tmp_path / "w.json").is_file()
    assert set(payload["summary_over_rounds"]) == {"scratch", "warm", "scratch_short"}
    assert payload["complete"] and set(payload["paired_difference_vs_scratch"]) == {"warm", "scratch_short"}
    rows = payload["per_seed"]["0"]
    assert len(rows) == 2 and rows[1]["labelled_pixels"] >= rows[0]["labelled_pixels"]
    for variant in ("scratch", "warm", "scratch_short"):
        assert 0 <= rows[0][variant]["held_out_miou"] <= 100
    assert rows[0]["warm"]["optimizer_steps"] > 0


def test_corrective_stroke_paints_the_true_class_where_the_prediction_is_wrong(load):
    module = load("refit_warm_start")
    truth = np.zeros((40, 60), np.uint8)
    truth[10:30, 20:50] = 1
    prediction = np.zeros_like(truth)  # the object is missed entirely
    i, stroke = module.corrective_stroke([truth.copy(), prediction], [truth, truth], np.random.default_rng(0))
    assert i == 1
    painted = stroke != 255
    assert painted.any() and (stroke[painted] == 1).all() and (truth[painted] == 1).all()
