"""``sklearn-ddpm synthesize``: samples, pseudo-labels and a network from the command line."""

import json

import joblib
import numpy as np
import pytest

from sklearn_ddpm import save_segmenter
from sklearn_ddpm.cli import main
from sklearn_ddpm.io import load_model


def test_synthesize_samples_labels_and_trains(tmp_path, tiny_ddpm, tiny_segmenter, capsys):
    model_dir = tmp_path / "ddpm"
    tiny_ddpm.save_pretrained(model_dir)
    save_segmenter(tiny_segmenter, tmp_path / "seg.skddpm")
    out = tmp_path / "samples"
    argv = ["synthesize", str(out), "--n-samples", "4", "--model", str(model_dir), "--inference-steps", "2",
            "--batch-size", "2", "--threads", "1"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("sample_*.png")) == [f"sample_{i:06d}.png" for i in range(4)]
    assert "4 samples in" in capsys.readouterr().out
    assert main(argv + ["--label-with", str(tmp_path / "seg.skddpm"), "--drop-fraction", "0.25",
                        "--train-network", str(tmp_path / "net.skddpm"), "--network-epochs", "1", "--quiet"]) == 0
    record = json.loads((out / "pseudo_labels" / "pseudo_labels.json").read_text())
    assert record["rule"]["n_kept"] == 3 and len(record["samples"]) == 4
    net = load_model(tmp_path / "net.skddpm")
    image = np.zeros((20, 28, 3), np.uint8)
    assert net.predict([image]).shape == (1, 20, 28)


def test_synthesize_refuses_a_pickled_segmenter_unless_trusted(tmp_path, tiny_segmenter, capsys):
    joblib.dump(tiny_segmenter, tmp_path / "seg.joblib")
    argv = ["synthesize", str(tmp_path / "samples"), "--n-samples", "1", "--label-with", str(tmp_path / "seg.joblib")]
    assert main(argv) == 2
    assert "seg.joblib is a pickle file" in capsys.readouterr().err
    assert not (tmp_path / "samples").exists() or not list((tmp_path / "samples").iterdir())  # refused before sampling


def test_synthesize_refuses_a_network_without_labels(tmp_path, capsys):
    assert main(["synthesize", str(tmp_path), "--n-samples", "1", "--train-network", "net.joblib"]) == 2
    assert "--train-network needs --label-with" in capsys.readouterr().err


def test_synthesize_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["synthesize", "--help"])
    text = capsys.readouterr().out
    assert "--inference-steps" in text and "--drop-fraction" in text and "examples:" in text
