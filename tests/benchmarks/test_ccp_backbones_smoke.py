"""``benchmarks/ccp_backbones.py``: the backbone chosen by the protocol's CV, by the rule fixed before its runs."""

import numpy as np
import pytest

from .test_benchmarks_smoke import _run


def _entry(model, folds, parameters):
    return {"model": model, "fold_miou": folds, "cv_miou": sum(folds) / len(folds), "unet_parameters": parameters}


def test_the_rule(load):
    choose = load("ccp_backbones").choose
    small = _entry("small", [30.0, 25.0, 33.0, 31.0], 6_000_000)
    # higher on every fold by 2 points: more than one SE of the paired differences
    wide = _entry("wide", [32.0, 27.5, 35.0, 32.5], 25_000_000)
    chosen, comparison = choose([small, wide])
    assert chosen == 1 and not comparison["within_one_se"]
    assert comparison["mean_difference"] == pytest.approx(2.0)
    # higher on average, but the folds disagree: within one SE, so the cheaper backbone
    noisy = _entry("wide", [36.0, 21.0, 35.0, 29.0], 25_000_000)
    chosen, comparison = choose([small, noisy])
    assert chosen == 0 and comparison["within_one_se"] and comparison["higher"] == "wide"


def test_quick(load, tmp_path):
    record = _run(load("ccp_backbones"), tmp_path)
    assert len(record["backbones"]) == 2
    assert "test" not in record["data"]  # the CV runs read no test photo
    for entry in record["backbones"]:
        assert entry["cv_miou"] == pytest.approx(np.mean(entry["fold_miou"]))
        assert len(entry["fold_miou"]) == record["folds"]
    assert record["chosen"] in {e["model"] for e in record["backbones"]}
    assert record["rule"].startswith("The rule, fixed before")
