"""``benchmarks/ddp_training.py --quick`` runs end to end (one 2-process torchrun launch) and its record is consistent.

Checks the script's output, never timings: a smoke run's numbers mean nothing.
"""

import pytest

from .test_benchmarks_smoke import _run


def test_ddp_training_quick(load, tmp_path):
    record = _run(load("ddp_training"), tmp_path)
    assert record["quick"] is True and record["backend"] == "gloo"
    rows = {r["config"]: r for r in record["rows"]}
    assert set(rows) == {"1proc_same_cores", "1proc", "1proc_half_batch", "2proc"}
    batch = record["settings"]["global_batch"]
    assert rows["2proc"]["processes"] == 2 and rows["2proc"]["batch_per_process"] == batch // 2
    assert rows["1proc_half_batch"]["global_batch"] == batch // 2
    assert rows["1proc_same_cores"]["threads_per_process"] == 2 * rows["2proc"]["threads_per_process"]
    for r in rows.values():
        assert r["seconds_per_step"] > 0
        assert r["steps_per_second"] == pytest.approx(1 / r["seconds_per_step"])
    summary = record["summary"]
    assert summary["speedup_2proc_vs_1proc_same_cores"] == pytest.approx(
        rows["1proc_same_cores"]["seconds_per_step"] / rows["2proc"]["seconds_per_step"])
    assert summary["ddp_overhead_seconds_per_step"] == pytest.approx(
        rows["2proc"]["seconds_per_step"] - rows["1proc_half_batch"]["seconds_per_step"])
    assert summary["allreduce_seconds_median"] > 0 and record["allreduce"]["reps"] == 3
    from sklearn_ddpm.ddpm_training import get_preset
    from diffusers import UNet2DModel

    spec = get_preset("tiny")
    assert summary["allreduce_gradient_floats"] == sum(
        p.numel() for p in UNet2DModel(**spec["unet"], sample_size=spec["image_size"]).parameters())

