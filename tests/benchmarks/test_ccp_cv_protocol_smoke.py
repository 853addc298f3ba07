"""``benchmarks/ccp_cv_protocol.py --quick`` runs the staged CV and the one test scoring end to end.

Checks the protocol's bookkeeping (what was compared, what was chosen, that the test run used the
choice), never accuracy figures: a smoke run's numbers mean nothing.
"""

import json

import numpy as np
import pytest

from .test_benchmarks_smoke import _run


@pytest.fixture
def protocol(load):
    return load("ccp_cv_protocol")


def test_cv_protocol_quick(protocol, tmp_path):
    record = _run(protocol, tmp_path, "--test-jobs", "2")  # one seed per process, merged
    table, chosen = record["cv_table"], record["chosen"]
    grid = protocol.QUICK_GRID
    stage1 = [r for r in table if r["stage"] == "1-features"]
    assert len(stage1) == len(grid["blocks"]) * len(grid["steps"]) * len(grid["standardize"])
    assert all(len(r["fold_miou"]) == record["folds"] for r in table)
    # stage 2 changes one setting of the stage-1 winner at a time
    best1 = max(stage1, key=lambda r: r["cv_miou"])
    stage2 = [r for r in table if r["stage"] == "2-budget"]
    assert len(stage2) == len(protocol.QUICK_STAGE2)
    for row, change in zip(stage2, protocol.QUICK_STAGE2):
        assert {k: row[k] for k in chosen} == {**{k: best1[k] for k in chosen}, **change}
    # the winner is the best CV score, and the test run used exactly its settings
    assert max(r["cv_miou"] for r in table) == next(r["cv_miou"] for r in table
                                                      if {k: r[k] for k in chosen} == chosen)
    settings = record["test"]["settings"]
    assert settings["blocks"] == list(chosen["blocks"]) and settings["steps"] == list(chosen["steps"])
    assert settings["standardize"] == chosen["standardize"]
    assert settings["n_estimators"] == chosen["n_estimators"]
    assert settings["max_pixels_per_image"] == chosen["max_pixels_per_image"]
    assert settings["n_noise_samples"] == chosen["n_noise_samples"]
    assert settings["refine"] == (chosen["refine"] or "none")
    # stage 4 adds the guided filter to the best of stages 1-3
    (refined,) = [r for r in table if r["stage"] == "4-refine"]
    best = max((r for r in table if r["stage"] != "4-refine"), key=lambda r: r["cv_miou"])
    assert {k: refined[k] for k in chosen} == {**{k: best[k] for k in chosen}, "refine": "guided"}
    assert sorted(settings["seeds"]) == [0, 1]
    for row in record["test"]["rows"]:
        assert len(row["miou_per_seed"]) == 2
        assert row["miou_std"] == pytest.approx(np.std(row["miou_per_seed"], ddof=1))
        assert row["miou_mean"] == pytest.approx(np.mean(row["miou_per_seed"]))


def test_cv_reads_no_test_photo_and_its_choice_is_scored_later(protocol, tmp_path):
    cv = _run(protocol, tmp_path, "--skip-test")
    assert cv["test"] is None and "test" not in cv["data"]
    cv_path = tmp_path / "cv.json"
    cv_path.write_text((tmp_path / f"{protocol.NAME}.json").read_text())
    # --cv-record: no CV again, the recorded choice is what the test scores
    record = _run(protocol, tmp_path, "--cv-record", str(cv_path))
    assert record["cv_table"] == cv["cv_table"] and record["chosen"] == cv["chosen"]
    assert record["test"]["settings"]["blocks"] == list(cv["chosen"]["blocks"])


def test_cv_minutes_skips_later_stages_only_and_parallel_folds_score_alike(protocol, tmp_path):
    record = _run(protocol, tmp_path, "--skip-test", "--cv-minutes", "0")
    assert {r["stage"] for r in record["cv_table"]} == {"1-features"}
    assert len(record["cv_skipped"]) == len(protocol.QUICK_STAGE2) + len(protocol.REFINE_STAGE)
    parallel = _run(protocol, tmp_path, "--skip-test", "--cv-minutes", "0", "--n-jobs", "2")
    assert [r["fold_miou"] for r in parallel["cv_table"]] == [r["fold_miou"] for r in record["cv_table"]]


def test_extend_cv_runs_only_the_stages_a_record_lacks(protocol, tmp_path):
    cv = _run(protocol, tmp_path, "--skip-test")
    # A record of the protocol before stage 4 existed: no "4-refine" row, no "refine" key.
    old_rows = [{k: v for k, v in r.items() if k != "refine"} for r in cv["cv_table"] if r["stage"] != "4-refine"]
    old = {**cv, "cv_table": old_rows, "chosen": {k: v for k, v in cv["chosen"].items() if k != "refine"}}
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old))
    record = _run(protocol, tmp_path, "--skip-test", "--cv-record", str(old_path), "--extend-cv")
    assert record["cv_table"][:len(old_rows)] == old_rows
    assert [r["stage"] for r in record["cv_table"][len(old_rows):]] == ["4-refine"]
    assert len(record["cv_seconds"]) == 2


def test_stage_3_combines_the_stage_2_changes_that_beat_the_stage_1_winner(protocol):
    """The callable stage of the search space: both changes beat the winner -> one combined candidate."""
    names, space = protocol.search_space(quick=True)
    assert names == list(protocol.STAGES) and space["required_stages"] == 1
    combined = space["stages"][names.index("3-combined")]
    stage1, stage2 = space["stages"][0][:2], space["stages"][1]
    points = [{k: v[0] for k, v in g.items()} for g in stage1]
    winner = points[1]
    history = {"stage": [0, 0, *[1] * len(stage2)],
               "params": [*points, *({**winner, **{k: v[0] for k, v in g.items()}} for g in stage2)]}
    gains = [0.3 - 0.01 * k for k in range(len(stage2))]  # every stage-2 change beats the winner's 0.2
    every = combined({**history, "mean_test_score": [0.1, 0.2, *gains]})
    expected = {**winner, **{k: v[0] for g in stage2 for k, v in g.items()}}
    assert {k: v[0] for k, v in every.items() if k in expected} == expected
    one_gain = [0.3, *[0.15] * (len(stage2) - 1)]
    assert combined({**history, "mean_test_score": [0.1, 0.2, *one_gain]}) == []  # one gain: no stage 3
