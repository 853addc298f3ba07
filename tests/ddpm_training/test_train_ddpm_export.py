"""What a train-ddpm run leaves: one step for the weights and their record, a model card, readable files,
and a time budget that the bar and the last line speak of."""

import json
import os
import re
import stat

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel
from PIL import Image

from sklearn_ddpm.cli import main
from sklearn_ddpm.ddpm_training import export_checkpoint, list_checkpoints, load_checkpoint, train_ddpm

FAST = dict(preset="tiny", image_size=16, batch_size=2, progress=False, num_threads=1)
CLI_FAST = ["--preset", "tiny", "--image-size", "16", "--batch-size", "2", "--threads", "1"]


def _images(n=3):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(n)]


def _folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(_images()):
        Image.fromarray(image).save(folder / f"im{i}.png")
    return folder


def _same_weights(a, b):
    sa = UNet2DModel.from_pretrained(a, subfolder="unet").state_dict()
    sb = UNet2DModel.from_pretrained(b, subfolder="unet").state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_time_budget_shows_in_the_bar_and_the_last_line(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train-ddpm", str(_folder(tmp_path)), str(run), *CLI_FAST, "--max-steps", "100000",
            "--max-minutes", "0.0001"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    step = load_checkpoint(run)["step"]
    assert 0 < step < 100000
    assert "train-ddpm (time budget)" in err and f"step {step}/100000" in err, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"Time budget of 0.0001 min spent at step {step} of 100000: "), last
    command = last.split("continue with: ")[1]
    assert command == "sklearn-ddpm " + " ".join(argv) + " --resume"
    assert json.loads((run / "train_info.json").read_text())["step"] == step
    # The printed command continues the run (with more steps, so that this test stays short).
    assert main(command.split()[1:] + ["--max-minutes", "10", "--max-steps", str(step + 2), "--quiet"]) == 0
    assert json.loads((run / "train_info.json").read_text())["step"] == step + 2


def test_train_info_and_the_exported_model_are_of_one_step(tmp_path, monkeypatch):
    import sklearn_ddpm.ddpm_training._train as train_module

    run = train_ddpm(_images(), tmp_path / "run", max_steps=4, checkpoint_every=2, **FAST)
    export_checkpoint(run / "checkpoints", tmp_path / "step4")

    def killed_before_the_export(*args, **kwargs):
        raise RuntimeError("killed")

    # A later session that checkpoints steps 6 and 8 and dies before its export.
    monkeypatch.setattr(train_module, "export_run", killed_before_the_export)
    with pytest.raises(RuntimeError, match="killed"):
        train_ddpm(_images(), run, max_steps=8, checkpoint_every=2, **FAST)
    assert load_checkpoint(run)["step"] == 8
    info = json.loads((run / "train_info.json").read_text())
    assert info["step"] == 4 and info["checkpoint"] == "step-00000004.pt"  # the record of the exported model ...
    assert _same_weights(run, tmp_path / "step4")  # ... which is step 4's


def test_export_has_a_model_card_and_readable_weights(tmp_path):
    umask = os.umask(0o022)
    try:
        run = train_ddpm(_images(), tmp_path / "run", max_steps=3, checkpoint_every=2, **FAST)
    finally:
        os.umask(umask)
    weights = list((run / "unet").glob("*.safetensors"))
    assert weights and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in weights)
    info = json.loads((run / "train_info.json").read_text())
    card = (run / "README.md").read_text()
    assert card.startswith("# DDPM backbone trained with `sklearn-ddpm train-ddpm`")
    assert f"| steps | {info['step']} ({info['step'] * 2} samples seen) |" in card
    assert "3 images given to `sklearn-ddpm train-ddpm`" in card
    assert f"{info['n_params'] / 1e6:.2f} M parameters" in card and "`step-00000003.pt`" in card
    assert re.search(r"sklearn-ddpm train-ddpm IMAGE_DIR OUT_DIR \\\n\s+--preset tiny --batch-size 2 .*--max-steps 3", card)
    # --export-only writes the same three things for the last checkpoint.
    for name in ("README.md", "train_info.json"):
        (run / name).unlink()
    assert main(["train-ddpm", "unused", str(run), "--export-only", "--quiet"]) == 0
    assert json.loads((run / "train_info.json").read_text())["step"] == 3 and (run / "README.md").is_file()


def test_bundled_card_comes_from_the_same_generator():
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("export_backbone", repo / "scripts" / "export_backbone.py")
    export_backbone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_backbone)
    bundled = repo / "sklearn_ddpm" / "_data" / "horse_ddpm"
    record = json.loads((bundled / "train_info.json").read_text())
    n_bytes = sum(p.stat().st_size for p in (bundled / "unet").glob("*.safetensors"))
    card = export_backbone.card_text(record, n_bytes, "float16")
    # the card says which sessions trained the model and how this snapshot was chosen among the scored ones
    assert "## Training sessions" in card and f"The run trained in {len(record['sessions'])} session(s)" in card
    assert "## How this snapshot was chosen" in card and f"{record['step']:,} (bundled)" in card
    strip = lambda text: re.sub(r"\| exported \| .* from", "| exported | from", text)  # noqa: E731
    assert strip(card) == strip((bundled / "MODEL_CARD.md").read_text())
