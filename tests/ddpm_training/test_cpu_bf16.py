"""bf16 autocast of train_ddpm on the CPU: it trains, it is chosen as documented, the weights stay fp32."""

import numpy as np
import pytest
import torch

from sklearn_ddpm.backbone import Backbone
from sklearn_ddpm.ddpm_training import load_checkpoint, train_ddpm
from sklearn_ddpm.ddpm_training import _train

from .test_train_ddpm import FAST, _images

# No warm-up and a large step size: the loss falls within a few tens of steps of the tiny preset.
QUICK = dict(FAST, lr=2e-3, lr_warmup_steps=0, checkpoint_every=40)


def test_bf16_on_the_cpu_trains_and_keeps_fp32_weights(tmp_path):
    out = train_ddpm(_images(), tmp_path / "run", max_steps=40, mixed_precision="bf16", **QUICK)
    ckpt = load_checkpoint(out)
    assert ckpt["sessions"][-1]["autocast"] == "bfloat16"
    losses = np.array([row[1] for row in ckpt["log"]])  # one mean every 10 steps
    assert len(losses) == 4 and np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]
    assert all(w.dtype == torch.float32 for w in ckpt["model"].values())
    backbone = Backbone.from_pretrained(out)  # the exported EMA model, read back in fp32
    assert next(backbone.unet.parameters()).dtype == torch.float32
    acts = backbone.decoder_activations(torch.zeros(1, 3, 16, 16), torch.tensor([50]), [1])
    assert acts[1].dtype == torch.float32 and torch.isfinite(acts[1]).all()


@pytest.mark.parametrize("fast_bf16, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_is_bf16_only_where_the_cpu_has_bf16_instructions(tmp_path, monkeypatch, fast_bf16, expected):
    monkeypatch.setattr(_train, "cpu_has_fast_bf16", lambda: fast_bf16)
    out = train_ddpm(_images(), tmp_path / "run", max_steps=1, **QUICK)
    assert load_checkpoint(out)["sessions"][-1]["autocast"] == expected


def test_no_keeps_the_fp32_path(tmp_path):
    out = train_ddpm(_images(), tmp_path / "run", max_steps=1, mixed_precision="no", **QUICK)
    assert load_checkpoint(out)["sessions"][-1]["autocast"] == "float32"


def test_fp16_is_refused_on_the_cpu(tmp_path):
    with pytest.raises(ValueError, match="'fp16' is not supported on cpu; use 'auto', 'no' or 'bf16'"):
        train_ddpm(_images(), tmp_path / "run", max_steps=1, mixed_precision="fp16", **QUICK)


def test_cli_mixed_precision_bf16_on_the_cpu(tmp_path):
    from PIL import Image

    from sklearn_ddpm.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(_images()):
        Image.fromarray(image).save(folder / f"im{i}.png")
    assert main(["train-ddpm", str(folder), str(tmp_path / "run"), "--preset", "tiny", "--image-size", "16",
                 "--batch-size", "2", "--max-steps", "2", "--threads", "1", "--quiet",
                 "--mixed-precision", "bf16"]) == 0
    assert load_checkpoint(tmp_path / "run")["sessions"][-1]["autocast"] == "bfloat16"
