"""``benchmarks/ccp.py --quick`` runs end to end (tiny random UNet, a few shrunk images) and its record is consistent.

Checks the script's output, never accuracy figures: a smoke run's numbers mean nothing.
"""

import numpy as np
import pytest

from .test_benchmarks_smoke import _run


@pytest.fixture
def ccp(load):
    return load("ccp")


def test_ccp_quick(ccp, tmp_path):
    record = _run(ccp, tmp_path)
    rows = record["rows"]
    # every method x task x n cell is present, each with one score per seed
    cells = {(r["method"], r["task"], r["n_labeled"]) for r in rows}
    assert cells == {(m, t, n) for m in ("ddpm", "skimage") for t in ("coarse", "fine") for n in (2, 3)}
    n_seeds = len(record["settings"]["seeds"])
    assert "ddof=1" in record["std"]
    for row in rows:
        assert len(row["miou_per_seed"]) == len(row["pixel_accuracy_per_seed"]) == n_seeds
        # ± is the sample standard deviation over seeds
        assert row["miou_std"] == pytest.approx(np.std(row["miou_per_seed"], ddof=1))
        assert row["pixel_accuracy_std"] == pytest.approx(np.std(row["pixel_accuracy_per_seed"], ddof=1))
        assert all(0 <= v <= 100 for v in row["miou_per_seed"] + row["pixel_accuracy_per_seed"])
        expected = 11 if row["task"] == "coarse" else 59
        assert len(row["per_class_iou"]) == expected
    assert record["timings"]["total_s"] > 0


def test_scores_match_package_metric(ccp):
    """The streamed confusion-matrix scores equal ``sklearn_ddpm.miou_score`` on the same maps."""
    import numpy as np

    from sklearn_ddpm import miou_score

    rng = np.random.default_rng(0)
    truth = [rng.integers(0, 4, (6, 5)) for _ in range(3)]
    pred = [np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, 5, t.shape)) for t in truth]
    cm = sum(ccp.confusion(t, p, 6) for t, p in zip(truth, pred))
    miou, accuracy, iou = ccp.scores(cm)
    assert miou == pytest.approx(miou_score(truth, pred))
    assert accuracy == pytest.approx(np.mean(np.concatenate([(t == p).ravel() for t, p in zip(truth, pred)])))
    assert np.isnan(iou[5])  # a class in neither truth nor prediction is not scored
