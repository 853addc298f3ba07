"""``benchmarks/cli_example.py --quick`` (the CLI journey of docs/cli.md) runs end to end and its record is consistent.

Checks the script's output, never accuracy figures or timings: a smoke run's numbers mean nothing.
"""

import json
from pathlib import Path

import pytest

@pytest.fixture
def cli_example(load):
    return load("cli_example")


def test_parse_iou_table(cli_example):
    table = ("class  name        IoU %     pixels\n"
             "    0  background   85.5  1,001,515\n"
             "    1  horse        49.8    270,113\n"
             "mIoU 67.7 % over 2 classes and 20 images")
    parsed = cli_example.parse_iou_table(table)
    assert parsed["miou_percent"] == 67.7 and parsed["n_images"] == 20 and parsed["n_classes"] == 2
    assert [(r["name"], r["iou_percent"], r["pixels"]) for r in parsed["per_class"]] == [
        ("background", 85.5, 1001515), ("horse", 49.8, 270113)]


def test_clean_output_keeps_last_state_of_progress_bars(cli_example):
    text = "bar:   0%| 0/2\rbar:  50%| 1/2\rbar: 100%| 2/2\nWrote predictions\n"
    assert cli_example.clean_output(text) == "bar: 100%| 2/2\nWrote predictions"


def test_cli_example_quick(cli_example, tmp_path, weizmann_root):
    out = tmp_path / "cli_example.json"
    path = cli_example.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(out)])
    assert Path(path) == out
    record = json.loads(out.read_text())
    assert record["benchmark"] == "cli_example" and record["quick"] is True
    assert set(record["git"]) == {"before", "after"}
    assert [s["step"] for s in record["steps"]] == ["fit", "evaluate", "predict", "predict --resume"]
    assert all(s["returncode"] == 0 and s["seconds"] > 0 for s in record["steps"])
    assert all(s["command"].startswith("sklearn-ddpm ") for s in record["steps"])
    assert "--model" not in record["steps"][0]["command"]  # the bundled backbone
    # never trained on the test split
    assert not set(record["images"]["train"]) & set(record["images"]["test"])
    evaluation = record["evaluate"]
    assert evaluation["n_images"] == record["settings"]["n_test"]
    assert [r["name"] for r in evaluation["per_class"]] == ["background", "horse"]
    assert all(0 <= r["iou_percent"] <= 100 for r in evaluation["per_class"])
    assert 0 <= evaluation["miou_percent"] <= 100
    n = record["settings"]["n_predict"]
    assert f"Wrote predictions for {n} images" in record["steps"][2]["stdout"]
    assert f"Wrote predictions for 0 images to predictions, {n} already done (--resume)." in record["steps"][3]["stdout"]
    names = record["images"]["predict"]
    for name in names:
        assert {f"{name}.png", f"overlay/{name}.png", f"uncertainty/{name}.png", f"uncertainty/{name}.npy"} <= set(
            record["prediction_files"])
