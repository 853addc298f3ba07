"""Statements of the README and docs that the code decides: they must say what the code does."""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _flat(text):
    return " ".join(text.split())


def test_mixed_precision_auto_reads_the_same_in_the_help_and_the_docs(capsys, monkeypatch):
    import pytest
    import torch

    import sklearn_ddpm.ddpm_training._train as train
    from sklearn_ddpm.cli import main

    with pytest.raises(SystemExit):
        main(["train-ddpm", "--help"])
    help_text = _flat(capsys.readouterr().out)
    said = "auto = bf16 on CUDA where supported, else fp16; bf16 on CPUs with AVX512-BF16/AMX, else fp32"
    assert said in help_text, help_text
    assert said in _flat((REPO / "docs" / "training.md").read_text())
    # ... and it is what the code does on the CPU.
    for fast, dtype in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(train, "cpu_has_fast_bf16", lambda fast=fast: fast)
        assert train._autocast_dtype("auto", torch.device("cpu")) == dtype


def test_cli_doc_names_the_bundled_ddpm_steps():
    step = json.loads((REPO / "sklearn_ddpm" / "_data" / "horse_ddpm" / "train_info.json").read_text())["step"]
    text = _flat((REPO / "docs" / "cli.md").read_text())
    assert f"now bundles the same model trained to {step:,} steps" in text


def test_readme_says_how_to_get_the_command_on_the_path():
    readme = (REPO / "README.md").read_text()
    setup = readme.index("make test")
    assert re.search(r"source \.venv/bin/activate.*sklearn-ddpm.*PATH", readme[setup:setup + 400])
