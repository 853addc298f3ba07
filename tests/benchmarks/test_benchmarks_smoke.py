"""Each benchmark's ``main(["--quick"])`` runs end to end on tiny settings, so the scripts cannot rot.

These check the scripts' output and internal consistency, never timings.
"""

import json
from pathlib import Path

import pytest
import torch

from .conftest import BENCHMARKS


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
    # the shared cache must save UNet work and leave the cross-validation scores exactly as they were
    for cached in ("ActivationCache()", "directory"):
        assert rows[cached]["forward_rows"] < rows["none"]["forward_rows"]
        assert rows[cached]["cache_hits"] > 0
    assert record["scores_identical"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU report")
@pytest.mark.parametrize("name", ["memory", "ensemble", "extract", "gridsearch", "ddp_training"])
def test_cuda_request_without_gpu_is_reported(load, tmp_path, name):
    module = load(name)
    out = tmp_path / "x.json"
    module.main(["--device", "cuda", "--out", str(out)])
    assert json.loads(out.read_text())["status"] == "not measured (no GPU)"


def test_presets(load, tmp_path):
    record = _run(load("presets"), tmp_path)
    (row,) = record["rows"]
    assert row["preset"] == "tiny" and row["steps"] == 3
    assert row["seconds_per_step"] == pytest.approx(row["train_seconds"] / row["steps"])
    assert 0 < row["train_seconds"] <= row["wall_seconds_with_setup_and_export"]


def test_mean_sample_std_is_ddof_1(load):
    common = load("_common")
    mean, std = common.mean_sample_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert std == pytest.approx(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) ** 0.5 / 2 ** 0.5)
    assert common.mean_sample_std([3.0]) == (3.0, None)  # one seed: no spread to report
    assert common.format_mean_std([3.0]) == "3.0" and common.format_mean_std([1.0, 2.0]) == "1.5 ± 0.7"


def test_recompute_std_reads_per_seed_values(load, tmp_path):
    """Old records store a ddof=0 std; the recomputed one is ddof=1 from the per-seed values."""
    import numpy as np

    results = tmp_path / "results"
    results.mkdir()
    scores = [73.7, 74.4, 74.0]
    (results / "weizmann_n5.json").write_text(json.dumps(
        {"rows": [{"method": "ddpm", "n_labeled": 5, "miou_std": float(np.std(scores)), "scores": scores}]}))
    (results / "ccp_x.json").write_text(json.dumps(
        {"std": "sample", "rows": [{"method": "ddpm", "task": "coarse", "n_labeled": 20,
                                    "miou_per_seed": [27.0], "pixel_accuracy_per_seed": [86.0]}]}))
    (results / "memory.json").write_text(json.dumps({"runs": []}))
    module = load("recompute_std")
    record = json.loads(Path(module.main(["--results", str(results), "--out", str(tmp_path / "r.json")])).read_text())
    by_record = {e["record"]: e for e in record["entries"]}
    assert set(by_record) == {"weizmann_n5.json", "ccp_x.json"}
    weizmann = by_record["weizmann_n5.json"]["miou"]
    assert weizmann["n_seeds"] == 3 and weizmann["sample_std"] == pytest.approx(np.std(scores, ddof=1))
    assert weizmann["stored_std"] == pytest.approx(np.std(scores))
    assert by_record["ccp_x.json"]["miou"]["sample_std"] is None


def test_checked_in_sample_std_record_is_current(load):
    """benchmarks/results/recomputed_sample_std.json is what recompute_std computes from the records now."""
    module = load("recompute_std")
    stored = json.loads((BENCHMARKS / "results" / f"{module.NAME}.json").read_text())["entries"]
    assert stored == json.loads(json.dumps(module.recompute()))
