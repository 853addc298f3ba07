"""standardize_default.py: its rule on known fold scores, and a run on tiny settings (figures not checked)."""


def test_the_rule_adopts_only_when_not_worse_by_more_than_one_standard_error(load):
    bench = load("standardize_default")
    raw, std = (label for label, _ in bench.CANDIDATES)
    # paired differences -1, -1, -1, -1.2: mean -1.05, SE 0.05 -> worse by more than one SE
    worse = bench._verdict({raw: {"fold_miou": [80, 80, 80, 80]}, std: {"fold_miou": [79, 79, 79, 78.8]}}, 4)
    assert not worse["not_worse"] and abs(worse["mean_paired_difference"] + 1.05) < 1e-9
    # differences -1, +1, -1, +1: mean 0 -> not worse
    level = bench._verdict({raw: {"fold_miou": [80, 80, 80, 80]}, std: {"fold_miou": [79, 81, 79, 81]}}, 4)
    assert level["not_worse"]


def test_quick_run_writes_both_candidates(load, tmp_path):
    payload = load("standardize_default").main(["--quick", "--threads", "1", "--datasets", "weizmann",
                                                 "--out", str(tmp_path / "s.json")])
    rows = payload["datasets"]["weizmann"]["rows"]
    assert set(rows) == {"raw (current default)", "standardized"}
    assert all(len(r["fold_miou"]) == 2 for r in rows.values())
    assert "verdict" in payload["datasets"]["weizmann"]
