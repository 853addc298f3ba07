"""``benchmarks/cpu_inference.py --quick``: each part runs end to end and its record is consistent (never timings)."""

import subprocess

import pytest

from .test_benchmarks_smoke import _run


def test_speed_quick_compares_the_two_trees_and_removes_the_worktree(load, tmp_path):
    module = load("cpu_inference")
    record = _run(module, tmp_path)
    assert record["baseline_commit"] == module.BASELINE and record["repeats"] == 1
    # each tree imports its own package: the baseline from the temporary worktree
    assert f"tree-{module.BASELINE}" in record["imported_from"]["baseline"]
    assert f"tree-{record['current_commit']}" in record["imported_from"]["current"]
    for row in record["rows"]:
        assert len(row["baseline_s"]) == len(row["current_s"]) == 1
        assert row["speedup"] == pytest.approx(row["baseline_median_s"] / row["current_median_s"])
    worktrees = subprocess.run(["git", "-C", str(module._common.REPO_ROOT), "worktree", "list"],
                               capture_output=True, text=True).stdout
    assert record["worktree"] not in worktrees  # removed afterwards

def test_variants_quick(load, tmp_path):
    record = _run(load("cpu_inference"), tmp_path, "--part", "variants")
    rows = record["rows"]
    assert {(r["autocast"], r["channels_last"]) for r in rows} == {
        (None, False), ("bfloat16", False), (None, True), ("bfloat16", True)}
    assert all(r["seconds_per_image"] > 0 for r in rows)
    assert [r["speedup_vs_fp32"] for r in rows if r["autocast"] is None and not r["channels_last"]] == [1.0]


def test_accuracy_quick(load, tmp_path):
    record = _run(load("cpu_inference"), tmp_path, "--part", "accuracy")
    assert set(record["miou"]) == {"guided", "vote"}
    for refine, scores in record["miou"].items():
        assert set(scores) == {"fp32", "bf16"} and all(len(v) == 1 for v in scores.values())
        means = record["miou_mean"][refine]
        assert record["bf16_minus_fp32_points"][refine] == pytest.approx(means["bf16"] - means["fp32"])
    assert record["within_adoption_rule"] == (abs(record["bf16_minus_fp32_points"]["guided"]) < 0.3)


def test_profile_quick_times_every_stage_of_the_demo(load, tmp_path):
    record = _run(load("cpu_inference"), tmp_path, "--part", "profile")
    stages = {row["stage"]: row for row in record["rows"]}
    assert {"import torch", "train the ensemble", "guided filter", "write PNGs", "total"} <= set(stages)
    assert stages["guided filter"]["calls"] == 10 and stages["write PNGs"]["calls"] == 20  # 10 test horses
    parts = sum(row["wall_s"] for name, row in stages.items() if name != "total")
    assert 0 < parts <= stages["total"]["wall_s"] and stages["total"]["cpu_share"] == 1
