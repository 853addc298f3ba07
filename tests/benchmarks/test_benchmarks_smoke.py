"""Each benchmark's ``main(["--quick"])`` runs end to end on tiny settings, so the scripts cannot rot.

These check the scripts' output and internal consistency, never timings.
"""

import importlib
import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load(monkeypatch):
    # The scripts import their sibling ``_common`` as a top-level module, as when run directly.
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def _load(name):
        return importlib.import_module(name)

    return _load


def _run(module, tmp_path, *extra):
    out = tmp_path / f"{module.NAME}.json"
    path = module.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(out), *extra])
    assert Path(path) == out
    record = json.loads(out.read_text())
    assert record["benchmark"] == module.NAME
    assert record["machine"]["torch"] == torch.__version__
    assert record["machine"]["cpu_cores"] >= 1
    # the threads of the measurement, not the setting restored before the JSON is written
    assert record["machine"]["torch_threads"] == 1
    return record


def test_memory(load, tmp_path):
    record = _run(load("memory"), tmp_path)
    (run,) = record["runs"]
    n, side = run["n_images"], run["image_size"]
    assert run["dense_reference_bytes"] == run["n_features"] * side * side * 4 * n
    # compact fp16 features at native resolution are far below the dense fp32 layout
    assert 0 < run["feature_bytes"] < run["dense_reference_bytes"] / 10
    assert run["peak_rss"] >= max(run["rss_after_model"], run["rss_after_features"], run["rss_after_fit"])
    assert run["training_pixels"] <= n * run["max_pixels_per_image"]


def test_ensemble(load, tmp_path):
    record = _run(load("ensemble"), tmp_path)
    modes = [row["mode"] for row in record["rows"]]
    assert modes == ["one-by-one", "batched", "batched-large"]
    for row in record["rows"]:
        assert row["seconds"] > 0 and row["pixel_updates_per_s"] > 0
    large = record["rows"][2]
    assert large["lr"] == pytest.approx(1e-3 * (large["batch_size"] / 64) ** 0.5)


def test_extract(load, tmp_path):
    record = _run(load("extract"), tmp_path)
    reference, ours = record["rows"]
    assert (reference["method"], ours["method"]) == ("reference", "ours")
    side = record["image_size"]
    n_features = reference["output_MB_per_image"] * 1e6 / (side * side * 4)
    assert n_features == pytest.approx(round(n_features))
    assert ours["output_MB_per_image"] < reference["output_MB_per_image"]
    assert reference["seconds_per_image"] > 0 and ours["seconds_per_image"] > 0
    # the script's reference-style baseline computes the same features (fp16 storage rounding aside)
    assert ours["max_abs_diff_vs_reference"] <= 5e-3 * ours["max_abs_reference"]


def test_gridsearch(load, tmp_path):
    record = _run(load("gridsearch"), tmp_path)
    rows = {row["memory"]: row for row in record["rows"]}
    # the shared cache must save UNet work and leave the cross-validation scores as they were
    # (up to fp16 rounding of features computed in differently composed batches)
    assert rows["auto"]["forward_rows"] < rows["none"]["forward_rows"]
    assert rows["auto"]["cache_hits"] > 0
    assert record["scores"]["auto"] == pytest.approx(record["scores"]["none"], abs=0.02)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU report")
@pytest.mark.parametrize("name", ["memory", "ensemble", "extract", "gridsearch"])
def test_cuda_request_without_gpu_is_reported(load, tmp_path, name):
    module = load(name)
    out = tmp_path / "x.json"
    module.main(["--device", "cuda", "--out", str(out)])
    assert json.loads(out.read_text())["status"] == "not measured (no GPU)"
