"""Tests of train_ddpm: output format, resume after SIGKILL, determinism, CLI, export."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sklearn_ddpm.ddpm_training import (
    PRESETS,
    export_checkpoint,
    get_preset,
    list_checkpoints,
    load_checkpoint,
    train_ddpm,
)

REPO = Path(__file__).resolve().parents[2]
# A 16x16 version of the 0.13 M-parameter "tiny" preset: a step takes a few milliseconds.
FAST = dict(preset="tiny", image_size=16, batch_size=2, progress=False, num_threads=1)


def _images(n=5, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(20, 30), (33, 17), (16, 16), (40, 25), (24, 24)]
    return [rng.integers(0, 256, size=(*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def _unet_state(folder):
    from diffusers import UNet2DModel

    return UNet2DModel.from_pretrained(folder, subfolder="unet").state_dict()


def test_output_is_ddpm_pipeline_folder(tmp_path):
    out = train_ddpm(_images(), tmp_path / "run", max_steps=6, checkpoint_every=3, **FAST)
    assert (out / "model_index.json").is_file()
    assert (out / "unet" / "config.json").is_file()
    assert list((out / "unet").glob("*.safetensors"))
    sched = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert sched["beta_schedule"] == "linear"
    assert sched["beta_start"] == pytest.approx(1e-4) and sched["beta_end"] == pytest.approx(0.02)
    assert sched["num_train_timesteps"] == 1000 and sched["prediction_type"] == "epsilon"

    from diffusers import DDPMPipeline

    pipe = DDPMPipeline.from_pretrained(out)
    assert pipe.unet.config.sample_size == 16
    info = json.loads((out / "train_info.json").read_text())
    assert info["step"] == 6
    # keep_checkpoints=2 by default
    assert [p.name for p in list_checkpoints(out)] == ["step-00000003.pt", "step-00000006.pt"]
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,train_seconds"


def test_exported_weights_are_the_ema(tmp_path):
    out = train_ddpm(_images(), tmp_path / "run", max_steps=4, checkpoint_every=4, **FAST)
    ckpt = load_checkpoint(out)
    exported = _unet_state(out)
    names = list(ckpt["model"])
    shadow = dict(zip(names, ckpt["ema"]["shadow_params"]))
    changed = [k for k in names if not torch.equal(ckpt["model"][k], shadow[k])]
    assert changed, "EMA should differ from the raw weights after a few steps"
    for k in names:
        torch.testing.assert_close(exported[k], shadow[k])


def test_folder_input_skips_hidden_and_non_image_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(_images(3)):
        Image.fromarray(img).save(folder / f"im{i}.png")
    Image.fromarray(_images(1)[0][..., 0]).save(folder / "gray.png")  # converted with a warning
    Image.fromarray(_images(1)[0]).save(folder / ".hidden.png")  # e.g. an editor's or OS's file
    (folder / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="gray.png"):
        out = train_ddpm(folder, tmp_path / "run", max_steps=2, checkpoint_every=2, **FAST)
    assert json.loads((out / "train_info.json").read_text())["n_images"] == 4


def _cli_args(folder, out, *extra):
    return ["train-ddpm", str(folder), str(out), "--preset", "tiny", "--image-size", "16", "--batch-size", "2",
            "--checkpoint-every", "3", "--threads", "1", "--quiet", *extra]


def test_cli_image_list(tmp_path, capsys):
    from sklearn_ddpm.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(_images(3)):
        Image.fromarray(img).save(folder / f"im{i}.png")
    (tmp_path / "list.txt").write_text("im0\n# a comment\nim2.png\n\n")
    listed = _cli_args(folder, tmp_path / "out", "--max-steps", "1", "--image-list", str(tmp_path / "list.txt"))
    assert main(listed) == 0
    assert json.loads((tmp_path / "out" / "train_info.json").read_text())["n_images"] == 2

    (tmp_path / "bad.txt").write_text("missing\n")
    assert main(_cli_args(folder, tmp_path / "out2", "--image-list", str(tmp_path / "bad.txt"))) == 2
    assert "missing" in capsys.readouterr().err


def test_resume_continues_and_matches_uninterrupted_run(tmp_path):
    full = train_ddpm(_images(), tmp_path / "full", max_steps=8, checkpoint_every=4, **FAST)
    part = train_ddpm(_images(), tmp_path / "part", max_steps=4, checkpoint_every=4, **FAST)
    part = train_ddpm(_images(), tmp_path / "part", max_steps=8, checkpoint_every=4, **FAST)
    info = json.loads((part / "train_info.json").read_text())
    assert [(s["start_step"], s["end_step"]) for s in info["sessions"]] == [(0, 4), (4, 8)]
    a, b = _unet_state(full), _unet_state(part)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_resume_false_starts_afresh(tmp_path):
    train_ddpm(_images(), tmp_path / "run", max_steps=4, checkpoint_every=2, **FAST)
    with pytest.warns(UserWarning, match="deleting"):
        out = train_ddpm(_images(), tmp_path / "run", max_steps=2, checkpoint_every=2, resume=False, **FAST)
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002.pt"]


def test_resume_with_other_model_is_refused(tmp_path):
    train_ddpm(_images(), tmp_path / "run", max_steps=2, checkpoint_every=2, **FAST)
    with pytest.raises(ValueError, match="different model"):
        train_ddpm(_images(), tmp_path / "run", max_steps=4, **dict(FAST, image_size=32))


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import torch
    # Slow each optimizer step down so the parent can kill the run mid-way.
    _step = torch.optim.AdamW.step
    def slow_step(self, *args, **kwargs):
        time.sleep(0.1)
        return _step(self, *args, **kwargs)
    torch.optim.AdamW.step = slow_step
    from sklearn_ddpm.ddpm_training import train_ddpm
    rng = np.random.default_rng(0)
    sizes = [(20, 30), (33, 17), (16, 16), (40, 25), (24, 24)]
    images = [rng.integers(0, 256, size=(*s, 3), dtype=np.uint8) for s in sizes]
    train_ddpm(images, sys.argv[1], preset="tiny", image_size=16, batch_size=2, progress=False,
               num_threads=1, max_steps=int(sys.argv[2]), checkpoint_every=4)
    """
)


def test_sigkill_then_resume(tmp_path):
    run_dir = tmp_path / "killed"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    max_steps = 24
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), str(max_steps)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list_checkpoints(run_dir):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saved = load_checkpoint(run_dir)["step"]
    assert 0 < saved < max_steps

    # Re-running the same call resumes from the saved step and finishes.
    kwargs = dict(FAST, max_steps=max_steps, checkpoint_every=4)
    out = train_ddpm(_images(), run_dir, **kwargs)
    info = json.loads((out / "train_info.json").read_text())
    assert info["step"] == max_steps
    assert info["sessions"][-1]["start_step"] == saved
    assert info["sessions"][-1]["end_step"] == max_steps
    # The record's CPU time is the sum of its sessions' (two here: the killed run and the resume).
    cpu = [s["cpu_seconds"] for s in info["sessions"]]
    assert len(cpu) == 2 and all(c > 0 for c in cpu) and info["cpu_seconds"] == pytest.approx(sum(cpu), abs=0.2)
    assert export_checkpoint(out, tmp_path / "exported")["cpu_seconds"] == pytest.approx(sum(cpu))

    # ... and reaches the same step count and weights as a run that was never interrupted.
    ref = train_ddpm(_images(), tmp_path / "ref", **kwargs)
    assert json.loads((ref / "train_info.json").read_text())["step"] == max_steps
    a, b = _unet_state(ref), _unet_state(out)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_export_checkpoint_fp16_loads_as_fp32(tmp_path):
    from diffusers import UNet2DModel

    run = train_ddpm(_images(), tmp_path / "run", max_steps=4, checkpoint_every=2, **FAST)
    info = export_checkpoint(run, tmp_path / "half", dtype="float16")
    assert info["step"] == 4
    half = UNet2DModel.from_pretrained(tmp_path / "half", subfolder="unet", torch_dtype=torch.float32)
    assert next(half.parameters()).dtype == torch.float32
    full = UNet2DModel.from_pretrained(run, subfolder="unet")
    for (k, a), b in zip(full.state_dict().items(), half.state_dict().values()):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)


def test_cli_train_ddpm(tmp_path):
    from sklearn_ddpm.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(_images(2)):
        Image.fromarray(img).save(folder / f"im{i}.jpg")
    assert main(_cli_args(folder, tmp_path / "out", "--max-steps", "3")) == 0
    assert (tmp_path / "out" / "model_index.json").is_file()
    assert load_checkpoint(tmp_path / "out")["step"] == 3
    rc = main(["train-ddpm", str(tmp_path / "nowhere"), str(tmp_path / "out2"), "--quiet"])
    assert rc == 2


@pytest.mark.parametrize("option", ["--steps", "--step"])
def test_cli_steps_is_refused_and_names_max_steps(tmp_path, capsys, option):
    # `fit --steps` means diffusion timesteps, so train-ddpm's optimizer-step count is --max-steps
    # and the old spelling must not train silently.
    from sklearn_ddpm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(_cli_args(tmp_path, tmp_path / "out", option, "3"))
    assert exc.value.code == 2
    assert "renamed --max-steps" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_help_has_example(capsys):
    from sklearn_ddpm.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train-ddpm", "--help"])
    help_text = capsys.readouterr().out
    assert "sklearn-ddpm train-ddpm photos/" in help_text
    assert "--max-steps" in help_text and "--steps " not in help_text


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_adm_like(name):
    unet = get_preset(name)["unet"]
    assert unet["layers_per_block"] == 2
    assert unet["resnet_time_scale_shift"] == "scale_shift"
    assert unet["upsample_type"] == unet["downsample_type"] == "resnet"
    assert set(unet["down_block_types"]) == {"ResnetDownsampleBlock2D", "AttnDownBlock2D"}
    assert unet["up_block_types"][0] == "AttnUpBlock2D"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="huge"), "'preset' parameter"),
        (dict(max_steps=0), "'max_steps' parameter"),
        (dict(image_size=17), "multiple of"),
        (dict(mixed_precision="fp16"), "not supported on cpu"),
        (dict(mixed_precision="fp32"), "'mixed_precision' parameter"),
        (dict(ema_decay=1.0), "'ema_decay' parameter"),
        (dict(lr=0.0), "'lr' parameter"),
        # Accepted before validate_params: a fractional warm-up was truncated, a negative time
        # budget or weight decay was used as given, None as a seed failed inside int().
        (dict(lr_warmup_steps=1.5), "'lr_warmup_steps' parameter"),
        (dict(max_minutes=-1.0), "'max_minutes' parameter"),
        (dict(weight_decay=-0.1), "'weight_decay' parameter"),
        (dict(random_state=None), "'random_state' parameter"),
        (dict(keep_checkpoints=0), "'keep_checkpoints' parameter"),
        (dict(resume="yes"), "'resume' parameter"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, match):
    params = dict(FAST, max_steps=2)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_ddpm(_images(), tmp_path / "run", **params)


def test_bad_images(tmp_path):
    with pytest.raises(ValueError, match=r"images\[1\]"):
        train_ddpm([_images(1)[0], np.zeros((8, 8), np.uint8)], tmp_path / "run", max_steps=1, **FAST)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        train_ddpm(tmp_path / "empty", tmp_path / "run", max_steps=1, **FAST)


def test_time_budget_stops_checkpoints_and_exports(tmp_path):
    from sklearn_ddpm import load_backbone

    out = train_ddpm(_images(), tmp_path / "run", max_steps=10_000, max_minutes=1e-6, checkpoint_every=500, **FAST)
    assert load_backbone(out).unet is not None
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))
    assert checkpoints and checkpoints[-1].name != "step-00010000.pt"


def test_unfinished_run_names_the_fix_and_export_only_writes_the_model(tmp_path, capsys):
    import shutil

    from sklearn_ddpm import load_backbone
    from sklearn_ddpm.cli import main

    run = train_ddpm(_images(), tmp_path / "run", max_steps=4, checkpoint_every=2, **FAST)
    for exported in ("model_index.json", "unet", "scheduler"):  # as if killed before the export
        path = run / exported
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(ValueError, match="no exported model.*--export-only"):
        load_backbone(run)
    assert main(["train-ddpm", str(tmp_path / "unused"), str(run), "--export-only"]) == 0
    assert "(step 4)" in capsys.readouterr().out
    export_checkpoint(run, tmp_path / "reference")
    for a, b in zip(_unet_state(run).values(), _unet_state(tmp_path / "reference").values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    load_backbone(run)


def test_schedule_is_the_backbone_noise_scheduler(tmp_path):
    import sklearn_ddpm.ddpm_training as ddpm_training
    from sklearn_ddpm.backbone._schedule import noise_scheduler

    assert not hasattr(ddpm_training, "make_scheduler")  # one function builds the schedule
    out = train_ddpm(_images(), tmp_path / "run", max_steps=1, **FAST)
    expected = {k: v for k, v in noise_scheduler().config.items() if not k.startswith("_")}
    recorded = json.loads((out / "train_info.json").read_text())["scheduler"]
    assert recorded == json.loads(json.dumps(expected))
    saved = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert {k: saved[k] for k in recorded} == recorded


def test_export_writes_through_backbone_save_pretrained(tmp_path, monkeypatch):
    from sklearn_ddpm.backbone import Backbone

    run = train_ddpm(_images(), tmp_path / "run", max_steps=2, checkpoint_every=2, **FAST)
    calls = []
    save_pretrained = Backbone.save_pretrained

    def spy(self, path, *args, **kwargs):
        calls.append((self, Path(path)))
        return save_pretrained(self, path, *args, **kwargs)

    monkeypatch.setattr(Backbone, "save_pretrained", spy)
    export_checkpoint(run, tmp_path / "half", dtype="float16")
    [(backbone, path)] = calls
    assert path == tmp_path / "half"
    assert next(backbone.unet.parameters()).dtype == torch.float16
    assert list((path / "unet").glob("*.safetensors"))


def test_export_leaves_the_callers_random_state(tmp_path):
    run = train_ddpm(_images(), tmp_path / "run", max_steps=2, checkpoint_every=2, **FAST)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    export_checkpoint(run, tmp_path / "again")
    train_ddpm(_images(), tmp_path / "run", max_steps=3, checkpoint_every=2, **FAST)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_export_checkpoint_validates_dtype(tmp_path):
    with pytest.raises(ValueError, match="'dtype' parameter"):
        export_checkpoint(tmp_path, tmp_path / "out", dtype="float64")


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    run = train_ddpm(_images(), tmp_path / "run", max_steps=2, checkpoint_every=2, **FAST)
    before = (run / "checkpoints" / "step-00000002.pt").read_bytes()

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        train_ddpm(_images(), run, max_steps=4, checkpoint_every=2, **FAST)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000002.pt"]  # no torn file left
    assert (run / "checkpoints" / "step-00000002.pt").read_bytes() == before
