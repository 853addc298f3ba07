"""The Weizmann benchmark runs end to end on tiny settings (its figures are not checked here)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_weizmann_quick(tmp_path, weizmann_root):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import weizmann

        payload = weizmann.main(["--quick", "--threads", "1", "--out", str(tmp_path / "w.json"),
                                 "--methods", "ddpm", "skimage", "ddpm-large-batch"])
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert (tmp_path / "w.json").is_file()
    assert {r["method"] for r in payload["rows"]} == {"ddpm", "skimage", "ddpm-large-batch"}
    assert all(0 <= r["miou_mean"] <= 100 for r in payload["rows"])
    # ± is the sample standard deviation over seeds (None for one seed), and the record says so
    assert "ddof=1" in payload["miou_std"]
    for row in payload["rows"]:  # --quick: one seed, no spread to state
        assert len(row["scores"]) == 1 and row["miou_std"] is None


def test_weizmann_quick_two_seeds_states_the_sample_std(tmp_path, weizmann_root):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import weizmann

        payload = weizmann.main(["--quick", "--seeds", "2", "--threads", "1", "--out", str(tmp_path / "w.json"),
                                 "--methods", "ddpm", "skimage"])
    finally:
        sys.path.remove(str(BENCHMARKS))
    for row in payload["rows"]:
        assert len(row["scores"]) == 2
        assert row["scores"][0] != row["scores"][1]  # the seeds differ, so the std is not trivially 0
        assert row["miou_std"] == pytest.approx(np.std(row["scores"], ddof=1))
        assert row["miou_std"] != pytest.approx(np.std(row["scores"], ddof=0))
