"""``benchmarks/cpu_training.py --quick`` runs end to end and its record is consistent (never its timings)."""

import pytest

from .test_benchmarks_smoke import _run


def test_cpu_training_quick(load, tmp_path):
    module = load("cpu_training")
    record = _run(module, tmp_path)
    curves = record["loss_curves"]
    assert {name: c["autocast"] for name, c in curves.items()} == {"fp32": "float32", "bf16": "bfloat16"}
    for c in curves.values():
        assert c["log_steps"] == [10, 20] and len(c["loss"]) == len(c["loss_ema"]) == 2
        assert c["loss_ema"] == pytest.approx(module.smoothed(c["loss"]))
        assert c["seconds_per_step"] > 0
    s = record["summary"]
    assert s["bf16_speedup"] == pytest.approx(s["fp32_seconds_per_step"] / s["bf16_seconds_per_step"])
    variants = record["step_variants"]
    assert {(v["autocast"], v["channels_last"]) for v in variants} == {
        ("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)}
    assert all(v["seconds_per_step"] > 0 and len(v["rounds"]) == 1 for v in variants)
    assert record["load_average_before"] and record["gpu"]
