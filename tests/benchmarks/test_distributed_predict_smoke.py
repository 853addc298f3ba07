"""``benchmarks/distributed_predict.py --quick`` runs end to end and its record is consistent.

Checks the script's output, never timings: a smoke run's numbers mean nothing.
"""

import pytest

from .test_benchmarks_smoke import _run


def test_distributed_predict_quick(load, tmp_path, weizmann_root):
    record = _run(load("distributed_predict"), tmp_path)
    assert record["quick"] is True
    n = record["settings"]["n_images"]
    assert len(record["images"]["predict"]) == n and not set(record["images"]["predict"]) & set(record["images"]["train"])
    assert record["io"]["read_seconds_per_image"] > 0 and record["io"]["write_labels_seconds_per_image"] > 0
    runs = record["runs"]
    assert set(runs) == {"cli", "dask_1_worker", "dask_2_workers"}
    assert runs["cli"]["repeats"][0]["command"].startswith("sklearn-ddpm predict ")
    assert runs["cli"]["images_per_second"] == pytest.approx(n / runs["cli"]["mean_seconds"])
    for name, workers in (("dask_1_worker", 1), ("dask_2_workers", 2)):
        run = runs[name]
        assert [r["n_workers"] for r in run["repeats"]] == [workers] * record["settings"]["repeats"]
        assert all(len(r["peak_rss_mib_per_worker"]) == workers for r in run["repeats"])
        assert run["peak_rss_mib_per_worker"] > 0
        assert run["images_per_second"] == pytest.approx(n / run["mean_seconds"])
        assert run["ratio_to_cli"] == pytest.approx(run["images_per_second"] / runs["cli"]["images_per_second"])
        # Floating-point ties at class boundaries only: threads and batches differ from the CLI's.
        assert run["max_label_pixel_fraction_differing_from_cli"] < 1e-3
