"""Data-parallel train_ddpm: 2 gloo processes under torchrun on this CPU, against one process.

Three torchrun launches in all (each imports torch and diffusers in two processes, most of the
time): the uninterrupted 2-process reference (plus a time-budget run in the same launch), and
the killed and the resumed run of the kill test.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sklearn_ddpm.ddpm_training import list_checkpoints, load_checkpoint, train_ddpm
from sklearn_ddpm.ddpm_training._data import load_images, sample_batch

from .test_train_ddpm import _images

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_ddp_child.py")
MAX_STEPS = 12
# lr 1e-2 with the default 200-step warm-up: 5e-5 at step 1 to 6e-4 at step 12, so the steps
# move the weights by far more than the tolerances below.
# fp32 (mixed_precision "no"): the tolerances below were measured on the fp32 path; bf16 autocast, the
# CPU default where the CPU has bf16 instructions, rounds each rank's half batch differently.
SETTINGS = dict(preset="tiny", image_size=16, batch_size=4, lr=1e-2, checkpoint_every=1, random_state=0,
                mixed_precision="no")
# Measured over these 12 steps, 1 vs 2 processes: logged losses differ by at most 1.8e-7 (a float32
# ulp or two at 1.1); raw weights by at most 1.0e-5 (64 of 125,043 above 1e-6, the median 0) and
# EMA weights by 7.8e-6. The gradients agree to float summation order, but AdamW divides each by
# the root of its running square, so a weight whose gradient is nearly zero can move by a
# visible fraction of the learning rate (6e-4 at step 12) on either side. The weight tolerance
# is 5x the largest difference seen, and 1/25 of the median change of a weight over the run
# (1.3e-3), which the test also checks.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 5e-5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args):
    """``torchrun --nproc_per_node 2`` on 127.0.0.1 only, as a command list."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args]


_ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")


def _run(cmd, timeout=120):
    proc = subprocess.run(cmd, env=_ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _cli_args(folder, out, *extra):
    s = SETTINGS
    return ["train-ddpm", str(folder), str(out), "--preset", s["preset"], "--image-size", str(s["image_size"]),
            "--batch-size", str(s["batch_size"]), "--lr", str(s["lr"]), "--checkpoint-every",
            str(s["checkpoint_every"]), "--seed", str(s["random_state"]), "--threads", "1", "--quiet",
            "--mixed-precision", s["mixed_precision"],
            "--max-steps", str(MAX_STEPS), *extra]


def _ema(folder):
    from diffusers import UNet2DModel

    return UNet2DModel.from_pretrained(folder, subfolder="unet").state_dict()


@pytest.fixture(scope="module")
def two_process(tmp_path_factory):
    """One launch: the uninterrupted 2-process reference, then a run with a time budget."""
    root = tmp_path_factory.mktemp("ddp")
    folder = root / "imgs"
    folder.mkdir()
    for i, img in enumerate(_images()):
        Image.fromarray(img).save(folder / f"im{i}.png")
    budget = _cli_args(folder, root / "budget", "--max-minutes", "0.001")
    budget[budget.index("--max-steps") + 1] = "100000"
    _run(_torchrun(str(CHILD), "own-group", *_cli_args(folder, root / "ref"), "::", *budget))
    return root


def test_two_processes_match_one_process_with_the_same_global_batch(two_process, tmp_path):
    one = train_ddpm(two_process / "imgs", tmp_path / "one", max_steps=MAX_STEPS, progress=False,
                     num_threads=1, **SETTINGS)
    single, ddp = load_checkpoint(one), load_checkpoint(two_process / "ref")
    assert ddp["sessions"][-1]["world_size"] == 2 and ddp["hparams"]["batch_size"] == SETTINGS["batch_size"]
    # Each logged loss (every step here) is the mean over the whole global batch.
    assert [r[0] for r in ddp["log"]] == [r[0] for r in single["log"]] == list(range(1, MAX_STEPS + 1))
    losses_1 = np.array([r[1] for r in single["log"]])
    losses_2 = np.array([r[1] for r in ddp["log"]])
    np.testing.assert_allclose(losses_2, losses_1, rtol=LOSS_RTOL)
    assert np.ptp(losses_1) > 100 * LOSS_RTOL * losses_1.max()  # the trajectory is not flat
    for k, w in single["model"].items():
        torch.testing.assert_close(ddp["model"][k], w, atol=WEIGHT_ATOL, rtol=0)
    for a, b in zip(_ema(two_process / "ref").values(), _ema(one).values()):
        torch.testing.assert_close(a, b, atol=WEIGHT_ATOL, rtol=0)
    # ... while training moved the weights by far more than that tolerance.
    from diffusers import UNet2DModel

    with torch.random.fork_rng():
        torch.manual_seed(SETTINGS["random_state"])  # train_ddpm's initial weights
        init = UNet2DModel(**single["unet_kwargs"]).state_dict()
    change = torch.cat([(single["model"][k] - w).abs().flatten() for k, w in init.items()])
    assert change.median() > 10 * WEIGHT_ATOL
    # Rank 0 alone wrote the files: one log line per step, one session.
    log = (two_process / "ref" / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + MAX_STEPS
    assert len(json.loads((two_process / "ref" / "train_info.json").read_text())["sessions"]) == 1


def test_time_budget_is_decided_on_rank_0(two_process):
    # Rank 1's clock was frozen: it stopped only because rank 0 said so, at the same step
    # (otherwise the launch would have hung in the next all-reduce and timed out).
    info = json.loads((two_process / "budget" / "train_info.json").read_text())
    assert 0 < info["step"] < 100000
    assert load_checkpoint(two_process / "budget")["step"] == info["step"]
    assert (two_process / "budget" / "model_index.json").is_file()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_then_resume_loses_no_step(two_process, tmp_path):
    run, pid_dir = tmp_path / "killed", tmp_path / "pids"
    pid_dir.mkdir()
    args = _cli_args(two_process / "imgs", run)
    proc = subprocess.Popen(_torchrun(str(CHILD), "slow", *args), env=dict(_ENV, DDP_TEST_PID_DIR=str(pid_dir)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        deadline = time.monotonic() + 90
        while not [p for p in list_checkpoints(run) if p.name >= "step-00000003.pt"]:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        pids = [int((pid_dir / f"rank-{r}").read_text()) for r in (0, 1)]
        # A rank dies without a word (OOM killer, lost node); torchrun must stop the other one,
        # which would otherwise wait in its next all-reduce for ever.
        os.kill(pids[1], signal.SIGKILL)
        assert proc.wait(timeout=60) != 0
        assert not _alive(pids[0])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:  # only the two ranks this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    saved = load_checkpoint(run)["step"]
    assert 3 <= saved < MAX_STEPS

    # The same command through the real entry point resumes on both ranks and finishes.
    _run(_torchrun("-m", "sklearn_ddpm.cli", *args))
    info = json.loads((run / "train_info.json").read_text())
    assert info["step"] == MAX_STEPS
    assert [(s["start_step"], s["end_step"], s["world_size"]) for s in info["sessions"]] == [
        (0, saved, 2), (saved, MAX_STEPS, 2)]
    log = (run / "train_log.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in log] == list(range(1, MAX_STEPS + 1))
    # Same weights and log as the uninterrupted 2-process run: each rank got its random state back.
    ref = load_checkpoint(two_process / "ref")
    resumed = load_checkpoint(run)
    assert [r[:3] for r in resumed["log"]] == [r[:3] for r in ref["log"]]
    for k, w in ref["model"].items():
        torch.testing.assert_close(resumed["model"][k], w, rtol=0, atol=0)
    for a, b in zip(_ema(run).values(), _ema(two_process / "ref").values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_batch_not_divisible_by_world_size_is_refused(tmp_path, monkeypatch, capsys):
    # The check runs before any process group is joined, so a fake torchrun environment suffices.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"batch_size=3 is the global batch.*2 processes.*multiple of 2"):
        train_ddpm(_images(), tmp_path / "run", preset="tiny", image_size=16, batch_size=3, max_steps=1,
                   progress=False)
    assert not (tmp_path / "run").exists()

    from sklearn_ddpm.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(_images(1)[0]).save(folder / "im0.png")
    assert main(_cli_args(folder, tmp_path / "out", "--batch-size", "5")) == 2
    assert "multiple of 2" in capsys.readouterr().err


def test_rank_slices_make_up_the_single_process_batch():
    images = load_images(_images(), 16)
    full = sample_batch(images, np.random.default_rng(3), 6, 16)
    parts = [sample_batch(images, np.random.default_rng(3), 6, 16, slice(r * 2, r * 2 + 2)) for r in range(3)]
    torch.testing.assert_close(torch.cat(parts), full, rtol=0, atol=0)
