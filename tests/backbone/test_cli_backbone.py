"""``sklearn-ddpm convert`` and ``sklearn-ddpm blocks`` through ``sklearn_ddpm.cli.main``."""

import warnings

import pytest
import torch

from sklearn_ddpm.backbone import Backbone, load_backbone, tiny_unet
from sklearn_ddpm.cli import main

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from guided_diffusion.script_util import create_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small guided-diffusion checkpoint with 32-channel heads (so --num-head-channels is needed)."""
    torch.manual_seed(0)
    model = create_model(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2", learn_sigma=True,
                         attention_resolutions="32,16,8", num_head_channels=32, use_scale_shift_norm=True,
                         resblock_updown=True).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    torch.save(model.state_dict(), path)
    return path, model


@pytest.mark.parametrize("command", ["convert", "blocks"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"sklearn-ddpm {command}" in text
    assert "--num-head-channels" in text and "--image-size" in text


def test_convert_writes_a_loadable_folder(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    out_dir = tmp_path / "converted"
    assert main(["convert", str(path), str(out_dir), "--num-head-channels", "32", "--noise-schedule", "cosine"]) == 0
    assert "32x32" in capsys.readouterr().out
    assert (out_dir / "unet" / "config.json").is_file() and (out_dir / "scheduler" / "scheduler_config.json").is_file()
    backbone = load_backbone(out_dir)
    assert backbone.image_size == (32, 32)
    assert backbone.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3, 900])
    with torch.no_grad():
        expected = model(x, t)
        torch.testing.assert_close(backbone.unet(x, t).sample, expected, rtol=1e-4, atol=1e-5)


def test_convert_errors_are_reported_not_raised(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    # Without --num-head-channels the 32-channel attention cannot be split into the default 64-channel heads.
    assert main(["convert", str(path), str(tmp_path / "a")]) == 2
    assert "num_head_channels" in capsys.readouterr().err
    assert main(["convert", str(path), str(tmp_path / "b"), "--num-head-channels", "32", "--image-size", "64"]) == 2
    assert "does not match" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert main(["convert", str(path), str(tmp_path / "taken"), "--num-head-channels", "32"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.pt"), str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_blocks_of_a_folder_and_a_checkpoint(checkpoint, tmp_path, capsys):
    Backbone(tiny_unet()).save_pretrained(tmp_path / "tiny")
    assert main(["blocks", "--model", str(tmp_path / "tiny")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# Backbone(")
    assert lines[1].split() == ["block", "channels", "resolution", "module"]
    assert len(lines) == 2 + 12 and lines[-1].split()[:3] == ["11", "16", "32x32"]
    assert main(["blocks", "--model", str(tmp_path / "tiny"), "--image-size", "64x32"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:3] == ["11", "16", "64x32"]

    path, _ = checkpoint
    assert main(["blocks", "--model", str(path), "--num-head-channels", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 6  # 3 levels x (1 resblock + 1)
    assert lines[-1].split()[:3] == ["5", "32", "32x32"]


def test_blocks_errors(tmp_path, capsys):
    assert main(["blocks", "--model", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["blocks", "--image-size", "big"])
