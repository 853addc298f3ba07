"""Ctrl-C in the command line: one line, exit status 130, nothing half-saved; train-ddpm keeps its steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.cli import main
from sklearn_ddpm.ddpm_training import list_checkpoints, load_checkpoint, train_ddpm

REPO = Path(__file__).resolve().parents[2]
TINY_DDPM = dict(preset="tiny", image_size=16, batch_size=2, progress=False, num_threads=1)


def _run(capsys, argv):
    try:
        code = main([str(a) for a in argv])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped sklearn_ddpm.cli.main as a traceback")
    out, err = capsys.readouterr()
    return code, out, err


def _folders(root, n=2, size=32):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        mask = np.zeros((size, size), np.uint8)
        mask[size // 2:] = 1
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root / "images", root / "masks"


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_fit_saves_nothing_and_leaves_the_old_model(tmp_path, capsys, monkeypatch):
    from sklearn.pipeline import Pipeline

    images, masks = _folders(tmp_path)
    Backbone(tiny_unet()).save_pretrained(tmp_path / "tiny")
    old = tmp_path / "seg.joblib"
    old.write_bytes(b"the previous model")
    monkeypatch.setattr(Pipeline, "fit", _ctrl_c)
    argv = ["fit", images, masks, "--model", tmp_path / "tiny", "--blocks", "6", "--steps", "50", "--threads", "1",
            "--quiet", "-o", old]
    code, out, err = _run(capsys, argv)
    assert code == 130
    assert err.strip() == f"sklearn-ddpm fit: interrupted: nothing was saved; {old} is unchanged.", err
    assert old.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "masks", "seg.joblib", "tiny"]  # no temp file
    argv[-1] = tmp_path / "new.joblib"
    code, _, err = _run(capsys, argv)
    assert code == 130 and "was not created" in err and not (tmp_path / "new.joblib").exists()


def test_ctrl_c_in_other_commands_is_one_line(tmp_path, capsys, monkeypatch):
    import sklearn_ddpm._segment_cli._commands as commands

    monkeypatch.setattr(commands, "load_segmenter", _ctrl_c)
    code, out, err = _run(capsys, ["predict", "seg.joblib", tmp_path, "-o", tmp_path / "pred", "--quiet"])
    assert code == 130 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--resume" in err and "Traceback" not in err, err
    code, out, err = _run(capsys, ["evaluate", "seg.joblib", tmp_path, tmp_path, "--quiet"])
    assert code == 130 and err.strip().startswith("sklearn-ddpm evaluate: interrupted:"), err


def _images(n=3):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(n)]


def test_train_ddpm_ctrl_c_stops_at_a_step_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    from diffusers import UNet2DModel

    import sklearn_ddpm.ddpm_training._train as train_module

    calls = []
    real_sample_batch = train_module.sample_batch

    def sample_batch_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in the middle of step 3
            os.kill(os.getpid(), signal.SIGINT)
        return real_sample_batch(*args, **kwargs)

    monkeypatch.setattr(train_module, "sample_batch", sample_batch_then_ctrl_c)
    run = tmp_path / "run"
    # whatever the process had: Python's handler from a terminal, SIG_IGN in a background job
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 3") as info:
        train_ddpm(_images(), run, max_steps=8, checkpoint_every=100, **TINY_DDPM)
    assert info.value.step == 3
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is given back
    assert load_checkpoint(run)["step"] == 3
    assert json.loads((run / "train_info.json").read_text())["step"] == 3
    assert (run / "model_index.json").is_file()  # the model of step 3, exported
    monkeypatch.setattr(train_module, "sample_batch", real_sample_batch)
    train_ddpm(_images(), run, max_steps=8, checkpoint_every=100, **TINY_DDPM)
    reference = train_ddpm(_images(), tmp_path / "ref", max_steps=8, checkpoint_every=100, **TINY_DDPM)
    a = UNet2DModel.from_pretrained(run, subfolder="unet").state_dict()
    b = UNet2DModel.from_pretrained(reference, subfolder="unet").state_dict()
    for k in a:  # the interrupted run is the uninterrupted one: no step lost or half-taken
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_train_ddpm_sigint_prints_the_step_and_the_resume_command(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, image in enumerate(_images()):
        Image.fromarray(image).save(folder / f"im{i}.png")
    run = tmp_path / "run"
    argv = ["train-ddpm", str(folder), str(run), "--preset", "tiny", "--image-size", "16", "--batch-size", "2",
            "--max-steps", "1000000", "--checkpoint-every", "5", "--threads", "1", "--no-resume"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "sklearn_ddpm.cli", *argv], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list_checkpoints(run):  # training has begun
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    step = load_checkpoint(run)["step"]
    assert step >= 5
    assert last.startswith(f"sklearn-ddpm train-ddpm: interrupted at step {step}: checkpoint saved in "), last
    resume = last.split("resume with: ")[1]
    assert resume.startswith("sklearn-ddpm train-ddpm ") and resume.endswith(" --resume") and "--no-resume" not in resume
    assert json.loads((run / "train_info.json").read_text())["step"] == step
    # The printed command continues the run.
    assert main(resume.split()[1:-1] + ["--max-steps", str(step + 2), "--quiet", "--resume"]) == 0
    info = json.loads((run / "train_info.json").read_text())
    assert info["step"] == step + 2 and info["sessions"][-1]["start_step"] == step
