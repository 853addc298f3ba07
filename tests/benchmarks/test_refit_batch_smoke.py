"""The refit batch benchmark runs end to end on tiny settings; its rule adopts only a batch within one SE."""


def rows(differences, base=70.0):
    """Rounds whose batch-256 held-out mIoU is batch 64's plus ``differences``; 256 refits faster."""
    return [{"round": r + 1, "64": {"held_out_miou": base, "fit_cpu_s": 2.0},
             "256": {"held_out_miou": base + d, "fit_cpu_s": 1.0}} for r, d in enumerate(differences)]


def test_refit_batch_quick(tmp_path, load):
    payload = load("refit_batch").main(["--quick", "--threads", "1", "--batches", "64", "256",
                                        "--out", str(tmp_path / "b.json")])
    assert (tmp_path / "b.json").is_file() and payload["complete"]
    assert payload["chosen_batch"] in (64, 256) and payload["verdicts"]["256"]["n_pairs"] == 2
    for row in payload["per_seed"]["0"]:
        assert row["256"]["optimizer_steps"] < row["64"]["optimizer_steps"]
        assert row["256"]["training_pixels"] == row["64"]["training_pixels"]


def test_the_rule_keeps_64_when_the_larger_batch_loses_more_than_one_se(load):
    decide = load("refit_batch").decide
    verdicts, _, chosen = decide({0: rows([-2.0, -2.5, -1.5, -2.0])}, [64, 256])
    assert not verdicts["256"]["acceptable"] and chosen == 64
    # a loss within one standard error of the mean difference: the faster batch
    verdicts, _, chosen = decide({0: rows([-3.0, 2.0, -2.0, 2.5])}, [64, 256])
    assert verdicts["256"]["acceptable"] and chosen == 256


def test_refit_latency_profiles_a_refit_and_measures_each_batch(tmp_path, load):
    payload = load("refit_latency").main(["--quick", "--threads", "1", "--backbones", "bundled",
                                          "--mlp-batch-sizes", "64", "256", "--out", str(tmp_path / "r.json")])
    assert [r["mlp_batch_size"] for r in payload["results"]] == [64, 256]
    for result in payload["results"]:
        profile = result["profile"]
        assert profile["fit"]["refit, all"]["calls"] == 1 and profile["predict"]["guided filter"]["calls"] == 1
        assert 0 < profile["fit"]["Adam updates"]["cpu_s"] <= profile["fit"]["refit, all"]["cpu_s"]
