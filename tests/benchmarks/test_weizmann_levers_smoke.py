"""The Weizmann levers benchmark runs end to end on tiny settings (its figures are not checked here)."""

import pytest


@pytest.mark.parametrize("part", ["all", "large-batch"])
def test_weizmann_levers_quick(tmp_path, load, part):
    levers = load("weizmann_levers")
    payload = levers.main(["--quick", "--threads", "1", "--part", part, "--out", str(tmp_path / "w.json")])
    assert (tmp_path / "w.json").is_file()
    scores = payload["test"]["per_seed"][0]["scores"]
    assert all(0 <= v <= 100 for v in scores.values())
    assert ("large_batch" in scores) and (("flip+guided" in scores) == (part == "all"))
    if part == "all":
        # the CV record holds every candidate's score and the choice it made
        choice = payload["cv"]["choice"]
        assert choice["winner"] in choice["candidates_cv_miou"]
        assert choice["candidates_cv_miou"]["baseline"] == payload["cv"]["mean_miou"]["baseline"]
        # through select_segmenter: the levers are prediction-time parameters, one fit per fold
        selection = payload["cv"]["selection"][0]
        assert selection["fits"]["fitted"] == payload["settings"]["folds"]
        assert len(selection["cv_results"]["params"]) == len(payload["cv"]["mean_miou"])
