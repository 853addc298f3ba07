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


def test_warmup_rises_linearly_from_the_reference_lr_over_the_first_epochs(load):
    import numpy as np
    import torch
    from sklearn.datasets import make_classification

    bench = load("large_batch_rule")
    seen = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    X, y = make_classification(n_samples=2000, n_features=10, random_state=0)
    spec = {"lr": "linear", "warmup_epochs": 2}  # batch 256: lr 4e-3, 8 iterations per epoch
    clf = bench.make_classifier(spec, 256, n_estimators=2, max_epochs=3, patience=None, random_state=0,
                                optimizer=RecordingAdam).fit(X.astype(np.float32), y)
    assert clf.lr_ == 4e-3 and len(seen) == 24
    np.testing.assert_allclose(seen, np.r_[np.linspace(1e-3, 4e-3, 17), [4e-3] * 7])
