"""Checkpoints load with ``torch.load(weights_only=True)``; a tampered one is refused and runs nothing."""

from pathlib import Path

import numpy as np
import pytest
import torch

from sklearn_ddpm.ddpm_training import list_checkpoints, load_checkpoint, train_ddpm
from sklearn_ddpm.ddpm_training._checkpoints import UnsafeCheckpointError, set_rng_state

from .test_train_ddpm import FAST, _images


class _Payload:
    """Unpickling this creates ``marker``: what a tampered checkpoint could do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "the payload ran"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    train_ddpm(_images(), out, max_steps=2, checkpoint_every=1, keep_checkpoints=2, **FAST)
    return out


def test_checkpoints_load_with_weights_only(run_dir, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ckpt = load_checkpoint(run_dir)
    assert calls == [True]
    assert ckpt["step"] == 2 and ckpt["optimizer"]["state"] and ckpt["optimizer"]["param_groups"]
    # the random states come back usable
    np_rng, gen = np.random.default_rng(), torch.Generator()
    set_rng_state(ckpt["rng"], np_rng, gen)
    assert np_rng.bit_generator.state == ckpt["rng"]["numpy"]


def test_a_tampered_checkpoint_is_refused_without_running(run_dir, tmp_path):
    marker = tmp_path / "marker.txt"
    tampered_run = tmp_path / "out"
    (tampered_run / "checkpoints").mkdir(parents=True)
    good = list_checkpoints(run_dir)
    for f in good:
        (tampered_run / "checkpoints" / f.name).write_bytes(f.read_bytes())
    newest = tampered_run / "checkpoints" / good[-1].name
    ckpt = torch.load(newest, weights_only=True)
    ckpt["log"] = _Payload(marker)
    torch.save(ckpt, newest)
    with pytest.raises(UnsafeCheckpointError, match=f"{newest.name} was refused.*tampered"):
        load_checkpoint(newest)
    # a folder does not fall back to an older checkpoint: tampering is not disk damage
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(tampered_run)
    with pytest.raises(UnsafeCheckpointError):
        train_ddpm(_images(), tampered_run, max_steps=3, checkpoint_every=1, resume=True, **FAST)
    assert not marker.exists()
    # the test can fail: unpickled without weights_only, the same file runs its payload
    torch.load(newest, weights_only=False)
    assert marker.read_text() == "the payload ran"
