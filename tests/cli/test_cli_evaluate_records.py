"""``sklearn-ddpm evaluate --json/--csv``: per-class IoU with its pixel counts, written whole."""

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import load_segmenter, per_class_iou
from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.cli import main
from sklearn_ddpm.datasets import read_image, read_mask


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for i in range(3):
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        mask[:, 16:] = 1
        mask[:4, :4] = 255
        image[mask == 1] //= 3  # a class the features can find
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    Backbone(tiny_unet()).save_pretrained(root / "tiny")
    (root / "classes.txt").write_text("background\nhalf\n")
    assert main([str(a) for a in ("fit", root / "images", root / "masks", "--model", root / "tiny", "--blocks", "6",
                                  "--steps", "50", "--n-estimators", "1", "--max-epochs", "2", "--max-pixels-per-image",
                                  "200", "--classes", root / "classes.txt", "-o", root / "seg.joblib", "--threads", "1",
                                  "--quiet")]) == 0
    return root


def test_evaluate_writes_json_and_csv(fitted, capsys, tmp_path):
    out_json, out_csv = tmp_path / "scores.json", tmp_path / "scores.csv"
    code = main([str(a) for a in ("evaluate", fitted / "seg.joblib", fitted / "images", fitted / "masks",
                                  "--json", out_json, "--csv", out_csv, "--threads", "1", "--quiet")])
    table = capsys.readouterr().out
    assert code == 0
    record = json.loads(out_json.read_text())
    images = [read_image(p) for p in sorted((fitted / "images").iterdir())]
    truths = [read_mask(p) for p in sorted((fitted / "masks").iterdir())]
    predictions = load_segmenter(fitted / "seg.joblib").predict(images)
    expected = per_class_iou(truths, predictions, n_classes=2)
    assert [c["name"] for c in record["classes"]] == ["background", "half"]
    for k, row in enumerate(record["classes"]):
        truth = np.concatenate([t.ravel() for t in truths])
        guess = np.concatenate([np.asarray(p).ravel() for p in predictions])
        scored = truth != 255
        assert row["true_pixels"] == int((truth[scored] == k).sum())
        assert row["predicted_pixels"] == int((guess[scored] == k).sum())
        assert row["intersection"] == int(((truth == k) & (guess == k) & scored).sum())
        assert row["union"] == row["true_pixels"] + row["predicted_pixels"] - row["intersection"]
        assert row["iou"] == pytest.approx(expected[k]) and row["iou"] == pytest.approx(row["intersection"] / row["union"])
    assert record["miou"] == pytest.approx(np.nanmean(expected)) and record["n_images"] == 3
    assert f"mIoU {100 * record['miou']:.1f} %" in table
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["name"] for r in rows] == ["background", "half", "mIoU"]
    assert float(rows[1]["iou"]) == pytest.approx(record["classes"][1]["iou"])
    assert int(rows[0]["union"]) == record["classes"][0]["union"]
    assert float(rows[2]["iou"]) == pytest.approx(record["miou"])
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left


def test_evaluate_records_are_checked_before_predicting(fitted, capsys, tmp_path, monkeypatch):
    import sklearn_ddpm._segment_cli._commands as commands

    def no_work(*args, **kwargs):
        raise AssertionError("evaluate loaded the model before checking --json")

    monkeypatch.setattr(commands, "load_segmenter", no_work)
    code = main([str(a) for a in ("evaluate", fitted / "seg.joblib", fitted / "images", fitted / "masks",
                                  "--json", tmp_path, "--quiet")])
    assert code == 2 and re.search(r"--json '.*' is a folder", capsys.readouterr().err)


def test_evaluate_help_names_the_records(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--json FILE" in help_text and "--csv FILE" in help_text and "intersection and union" in help_text
