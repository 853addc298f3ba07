"""``benchmarks/active_learning.py --quick``: suggested vs random regions, its record's structure.

The figures of a smoke run (tiny random UNet, 2 MLPs) mean nothing; the structure, the labelling
budget and the rendering are checked.
"""

import numpy as np
import pytest

from .test_benchmarks_smoke import _run


def test_random_regions_keep_the_suggestions_shapes(load):
    from sklearn_ddpm.interactive import Suggestion

    module = load("active_learning")
    mask = np.zeros((30, 40), bool)
    mask[5:9, 10:20] = True
    mask[6, 21] = True
    suggestion = Suggestion(image=0, bbox=(5, 10, 9, 22), mask=mask, score=1.0)
    rng = np.random.default_rng(0)
    placed = module.random_regions([suggestion] * 20, [(30, 40), (25, 50)], rng)
    assert {image for image, _ in placed} == {0, 1}
    for image, region in placed:
        assert region.shape == [(30, 40), (25, 50)][image]
        assert region.sum() == mask.sum()
        ys, xs = np.nonzero(region)
        assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (4, 12)


def test_active_learning_quick(load, tmp_path, weizmann_root):
    module = load("active_learning")
    record = _run(module, tmp_path)
    settings = record["settings"]
    assert record["status"] == "complete"
    assert [r["seed"] for r in record["runs"]] == settings["seeds"]
    for run in record["runs"]:
        for arm in ("suggest", "random"):
            curve = run["curves"][arm]
            assert [p["round"] for p in curve] == list(range(settings["rounds"] + 1))
            assert curve[0]["regions"] == 0 and all(p["regions"] <= settings["k"] for p in curve[1:])
            # labels are only ever added
            pixels = [p["labelled_pixels"] for p in curve]
            assert pixels == sorted(pixels)
            assert all(0 <= p["miou"] <= 100 for p in curve)
        # both arms start from the same strokes and seed
        assert run["curves"]["suggest"][0]["miou"] == run["curves"]["random"][0]["miou"]
        assert run["curves"]["suggest"][0]["labelled_pixels"] == run["curves"]["random"][0]["labelled_pixels"]
    for row in record["summary"]:
        gains = [r["curves"]["suggest"][row["round"]]["miou"] - r["curves"]["random"][row["round"]]["miou"]
                 for r in record["runs"]]
        assert row["gain_mean"] == pytest.approx(np.mean(gains))
        assert row["gain_std"] == pytest.approx(np.std(gains, ddof=1))
    assert "ddof=1" in record["miou_std"]
    text = "\n".join(module.markdown(record, tmp_path / "active_learning.json"))
    assert "active_learning.json" in text and f"{record['summary'][-1]['suggest_miou_mean']:.1f}" in text
