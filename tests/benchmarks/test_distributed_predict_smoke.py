"""``benchmarks/distributed_predict.py --quick`` runs end to end and its record is consistent.

Checks the script's output, never timings: a smoke run's numbers mean nothing.
"""

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def distributed_predict(monkeypatch):
    # The script imports its sibling ``_common`` as a top-level module, as when run directly.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("distributed_predict")


def test_distributed_predict_quick(distributed_predict, tmp_path, weizmann_root):
    out = tmp_path / "distributed_predict.json"
    path = distributed_predict.main(["--quick", "--threads", "1", "--out", str(out)])
    assert Path(path) == out
    record = json.loads(out.read_text())
    assert record["benchmark"] == "distributed_predict" and record["quick"] is True
    n = record["settings"]["n_images"]
    assert len(record["images"]["predict"]) == n and not set(record["images"]["predict"]) & set(record["images"]["train"])
    runs = record["runs"]
    assert set(runs) == {"cli", "dask_1_worker", "dask_2_workers"}
    assert runs["cli"]["command"].startswith("sklearn-ddpm predict ")
    for name, workers in (("dask_1_worker", 1), ("dask_2_workers", 2)):
        run = runs[name]
        assert run["n_workers"] == workers and len(run["peak_rss_mib_per_worker"]) == workers
        assert all(m > 0 for m in run["peak_rss_mib_per_worker"])
        assert run["images_per_second"] == pytest.approx(n / run["seconds"])
        assert run["ratio_to_cli"] == pytest.approx(run["images_per_second"] / runs["cli"]["images_per_second"])
        assert run["labels_identical_to_cli"] is True
