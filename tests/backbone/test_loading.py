"""``load_backbone`` on every kind of ``model`` a user can pass, and ``Backbone`` pickling."""

import json
import os
import pickle
import random
import subprocess
import sys
import textwrap

import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from sklearn.base import clone

from sklearn_ddpm.backbone import Backbone, load_backbone, noise_scheduler, tiny_unet


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet(seed=3)


@pytest.fixture(scope="module")
def cosine_scheduler():
    return DDPMScheduler(num_train_timesteps=500, beta_schedule="squaredcos_cap_v2")


def test_in_memory_unet_and_backbone(unet, cosine_scheduler):
    backbone = load_backbone(unet)
    assert isinstance(backbone, Backbone) and backbone.unet is unet
    assert backbone.source == "UNet2DModel" and backbone.image_size == (32, 32)
    assert backbone.scheduler.config.num_train_timesteps == 1000  # the paper's schedule by default
    assert load_backbone(backbone) is backbone
    rescheduled = load_backbone(backbone, scheduler=cosine_scheduler)
    assert rescheduled.unet is unet and rescheduled.scheduler is cosine_scheduler
    assert rescheduled.fingerprint != backbone.fingerprint  # the schedule changes the features


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="convert_guided_diffusion"):
        load_backbone(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="UNet2DModel"):
        load_backbone(42)
    with pytest.raises(TypeError, match="UNet2DModel"):
        Backbone(torch.nn.Linear(2, 2))


def test_unet_only_folder(tmp_path, unet):
    unet.save_pretrained(tmp_path)
    backbone = load_backbone(tmp_path)
    assert _same_weights(backbone.unet, unet)
    assert backbone.source == str(tmp_path)
    assert backbone.scheduler.config.num_train_timesteps == 1000
    assert not backbone.unet.training
    assert backbone.fingerprint == Backbone(unet).fingerprint  # where it was loaded from does not count


def test_pipeline_folder_takes_the_checkpoints_schedule(tmp_path, unet, cosine_scheduler):
    DDPMPipeline(unet=unet, scheduler=cosine_scheduler).save_pretrained(tmp_path)
    backbone = load_backbone(str(tmp_path))
    assert _same_weights(backbone.unet, unet)
    assert isinstance(backbone.scheduler, DDPMScheduler)
    assert backbone.scheduler.config.num_train_timesteps == 500
    assert backbone.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    torch.testing.assert_close(backbone.scheduler.alphas_cumprod, cosine_scheduler.alphas_cumprod)
    # An explicit scheduler wins over the folder's.
    assert load_backbone(tmp_path, scheduler=noise_scheduler()).scheduler.config.num_train_timesteps == 1000


def test_pipeline_folder_keeps_the_scheduler_class(tmp_path, unet):
    DDPMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=200)).save_pretrained(tmp_path)
    backbone = load_backbone(tmp_path)
    assert isinstance(backbone.scheduler, DDIMScheduler)
    assert backbone.scheduler.config.num_train_timesteps == 200


def test_backbone_save_pretrained_round_trip(tmp_path, unet, cosine_scheduler):
    original = Backbone(unet, cosine_scheduler, source="test")
    original.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    loaded = load_backbone(tmp_path / "saved")
    assert _same_weights(loaded.unet, unet)
    assert loaded.fingerprint == original.fingerprint


def test_bad_folders_and_paths(tmp_path):
    with pytest.raises(ValueError, match="not a diffusers model folder"):
        load_backbone(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(ValueError, match="not a UNet2DModel"):
        load_backbone(tmp_path)
    for missing in (tmp_path / "nope", "./nope", "nope.pt"):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load_backbone(missing)


def test_corrupt_checkpoint_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(random.Random(0).randbytes(256))
    with pytest.raises(ValueError, match="not a state dict"):
        load_backbone(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not a state dict"):
        load_backbone(path)


def test_pickling_round_trip(unet, cosine_scheduler):
    backbone = Backbone(unet, cosine_scheduler, source="somewhere")
    fingerprint = backbone.fingerprint
    restored = pickle.loads(pickle.dumps(backbone))
    assert _same_weights(restored.unet, unet)
    assert restored.source == "somewhere" and not restored.unet.training
    assert isinstance(restored.scheduler, DDPMScheduler)
    assert restored.scheduler.config.num_train_timesteps == 500
    assert restored.fingerprint == fingerprint
    restored._fingerprint = None  # recomputed from the restored weights, not just carried over
    assert restored.fingerprint == fingerprint
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([5])
    with torch.no_grad():
        torch.testing.assert_close(restored.unet(x, t).sample, unet(x, t).sample, rtol=0, atol=0)


def test_clone_shares_the_backbone(unet):
    backbone = Backbone(unet)
    assert clone(backbone) is backbone
    fingerprint = backbone.fingerprint
    assert Backbone(tiny_unet(seed=3)).fingerprint == fingerprint  # same weights, same fingerprint
    assert Backbone(tiny_unet(seed=4)).fingerprint != fingerprint


# ------------------------------------------------------------------------------------------------
# Hugging Face hub ids, resolved offline from a cache built here
# ------------------------------------------------------------------------------------------------

_HUB_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from sklearn_ddpm.backbone import load_backbone

    result = {}
    for repo_id in ("test-org/tiny-ddpm", "test-org/tiny-unet-only"):
        backbone = load_backbone(repo_id)
        result[repo_id] = dict(fingerprint=backbone.fingerprint, source=backbone.source,
                               steps=backbone.scheduler.config.num_train_timesteps)
    try:
        load_backbone("test-org/not-in-cache")
    except OSError as exc:
        result["missing"] = str(exc)
    json.dump(result, sys.stdout)
    """
)


def _add_to_hub_cache(cache, repo_id, writer):
    # The cache layout of huggingface_hub: models--{org}--{name}/snapshots/{revision}/... and the
    # revision of the "main" branch in refs/main.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    writer(repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_hub_id_from_offline_cache(tmp_path, unet, cosine_scheduler):
    cache = tmp_path / "hub"
    pipeline = Backbone(unet, cosine_scheduler)
    _add_to_hub_cache(cache, "test-org/tiny-ddpm", pipeline.save_pretrained)
    _add_to_hub_cache(cache, "test-org/tiny-unet-only", unet.save_pretrained)
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
    env.pop("HF_ENDPOINT", None)
    # A fresh interpreter: huggingface_hub and diffusers read these variables when imported.
    completed = subprocess.run([sys.executable, "-c", _HUB_SCRIPT], env=env, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert result["test-org/tiny-ddpm"] == dict(fingerprint=pipeline.fingerprint, source="test-org/tiny-ddpm",
                                                 steps=500)
    unet_only = result["test-org/tiny-unet-only"]
    assert unet_only["fingerprint"] == Backbone(unet).fingerprint and unet_only["steps"] == 1000
    assert "could not load 'test-org/not-in-cache'" in result["missing"]
    assert "Hugging Face hub id" in result["missing"]


# ------------------------------------------------------------------------------------------------
# Mistyped paths fail at once; hub ids are tried only when they look like one, and quickly
# ------------------------------------------------------------------------------------------------
def test_mistyped_paths_are_not_found_without_a_hub_lookup(tmp_path, monkeypatch):
    import sklearn_ddpm.backbone._loading as loading

    def no_hub(*args, **kwargs):
        raise AssertionError("a path-like argument must not be looked up on the hub")

    monkeypatch.setattr(loading, "_load_hub", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for typo in ("runs/ddpmX", "ddpmX", "./runs/ddpmX", "~/no_such_ddpm", "a/b/c", "owner/model.safetensors",
                 "owner/model.ckpt", str(tmp_path / "runs" / "ddpmX")):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load_backbone(typo)


def test_unreachable_hub_id_fails_after_one_quick_request(monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    import sklearn_ddpm.backbone._loading as loading

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []

    def unreachable(self, repo_id, *, timeout=None, **kwargs):
        probes.append((repo_id, timeout))
        raise ConnectionError("Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("no file request (each retried) after the hub was found unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    monkeypatch.setattr(UNet2DModel, "load_config", no_download)
    with pytest.raises(FileNotFoundError, match=r"could not load 'some-owner/some-ddpm'.*HF_HUB_OFFLINE=1"):
        load_backbone("some-owner/some-ddpm")
    assert probes == [("some-owner/some-ddpm", loading._HUB_TIMEOUT_S)] and loading._HUB_TIMEOUT_S <= 10
