"""``benchmarks/self_training.py``: its choosing rule, and a run on tiny settings (figures not checked)."""


def _row(label, rounds, folds):
    return {"label": label, "params": {"n_rounds": rounds}, "fold_miou": folds, "cv_miou": sum(folds) / len(folds)}


def test_self_training_is_chosen_only_beyond_one_paired_standard_error(load):
    bench = load("self_training")
    base = _row("rounds 0", 0, [80.0, 82.0, 84.0, 86.0])
    # +1 on every fold: SE of the paired difference is 0, so the gain counts
    steady = _row("rounds 1", 1, [81.0, 83.0, 85.0, 87.0])
    chosen, best, gain, se = bench._choose([base, steady])
    assert chosen is steady and gain == 1.0 and se == 0.0
    # a larger mean gain from one fold only: within one SE, the baseline stays
    noisy = _row("rounds 1 noisy", 1, [78.0, 80.0, 82.0, 96.0])
    chosen, best, gain, se = bench._choose([base, noisy])
    assert best is noisy and gain == 1.0 and se > gain and chosen is base


def test_self_training_quick_run(tmp_path, load):
    bench = load("self_training")
    import json

    record = bench.main(["--quick", "--out", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text())["machine"]["torch_threads"] == 1
    assert [row["label"] for row in record["cv"]] == ["rounds 0", "rounds 1 keep 0.5"]
    runs = [r for r in record["runs"] if r["params"]["n_rounds"] == 1]
    assert len(runs) == record["folds"] and all(len(r["n_pseudo_pixels"]) == 1 for r in runs)
    # keep_fraction 0.5 of the unlabelled pixels, per image
    assert all(r["n_pseudo_pixels"][0] == r["n_unlabelled_pixels"] // 2 for r in runs)
    assert record["chosen"]["label"] in {"rounds 0", "rounds 1 keep 0.5"} and "test" not in record
