"""The large-batch rule benchmark runs end to end on tiny settings (its figures are not checked here)."""


def test_large_batch_rule_quick_cv_then_test(tmp_path, load):
    bench = load("large_batch_rule")
    candidates = ["sqrt", "linear+warmup2+ghost64"]  # plain, and warm-up with ghost batch norm
    cv = bench.main(["--quick", "--threads", "1", "--part", "cv", "--candidates", *candidates,
                     "--out", str(tmp_path / "cv.json")])
    fits = cv["cv"]["folds"][0]["fits"]
    assert set(fits) == {bench.REFERENCE, *candidates}
    # the choice is the best mean CV score, and no test image was read for it
    choice = cv["cv"]["choice"]
    assert choice["rule"] == max(candidates, key=cv["cv"]["mean_miou"].get)
    assert "test" not in cv and "test" not in cv["data"]

    test = bench.main(["--quick", "--threads", "1", "--part", "test", "--cv-record", str(tmp_path / "cv.json"),
                       "--out", str(tmp_path / "test.json")])
    assert test["test"]["rule"] == choice["rule"]
    row = test["test"]["per_seed"][0]
    assert 0 <= row["reference"]["miou"] <= 100 and 0 <= row["chosen"]["miou"] <= 100
    assert row["reference"]["lr"] == 1e-3 and row["chosen"]["lr"] > 1e-3
