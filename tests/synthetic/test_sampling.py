"""sample_images: seeded, batched, atomic and resumable sampling into a folder."""

import json

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.synthetic import _sampling, sample_images, sampling_scheduler

FAST = dict(num_inference_steps=2, batch_size=2, progress=False)


def _pixels(paths):
    return [np.asarray(Image.open(p)) for p in paths]


def test_samples_are_seeded_images(tmp_path, tiny_ddpm):
    first = sample_images(tmp_path / "a", 3, tiny_ddpm, **FAST)
    again = sample_images(tmp_path / "b", 3, tiny_ddpm, **FAST)
    other_seed = sample_images(tmp_path / "c", 3, tiny_ddpm, random_state=1, **FAST)
    assert [p.name for p in first] == ["sample_000000.png", "sample_000001.png", "sample_000002.png"]
    images = _pixels(first)
    assert all(im.shape == (32, 32, 3) and im.dtype == np.uint8 for im in images)
    assert all(np.array_equal(a, b) for a, b in zip(images, _pixels(again)))
    assert not any(np.array_equal(a, b) for a, b in zip(images, _pixels(other_seed)))
    assert not np.array_equal(images[0], images[1])  # each sample has its own noise
    manifest = json.loads((tmp_path / "a" / "samples.json").read_text())
    assert manifest["scheduler"] == "ddim" and manifest["num_inference_steps"] == 2 and manifest["n_samples"] == 3


def test_interrupted_run_resumes_to_the_same_images(tmp_path, tiny_ddpm, monkeypatch):
    reference = _pixels(sample_images(tmp_path / "whole", 5, tiny_ddpm, **FAST))
    real_save, saved = _sampling.atomic_save_image, []

    def save_then_stop(image, path):
        if len(saved) == 3:  # stopped in the middle of the second batch
            raise KeyboardInterrupt
        real_save(image, path)
        saved.append(path)

    monkeypatch.setattr(_sampling, "atomic_save_image", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sample_images(tmp_path / "resumed", 5, tiny_ddpm, **FAST)
    monkeypatch.undo()
    folder = tmp_path / "resumed"
    assert sorted(p.name for p in folder.iterdir()) == ["sample_000000.png", "sample_000001.png",
                                                         "sample_000002.png", "samples.json"]  # no partial files
    before = {p: p.stat().st_mtime_ns for p in saved}
    resumed = sample_images(folder, 5, tiny_ddpm, **FAST)
    assert all(np.array_equal(a, b) for a, b in zip(reference, _pixels(resumed)))
    assert {p: p.stat().st_mtime_ns for p in saved} == before  # finished samples are not redrawn


def test_more_samples_extend_a_folder_other_settings_are_refused(tmp_path, tiny_ddpm):
    folder = tmp_path / "s"
    first = _pixels(sample_images(folder, 2, tiny_ddpm, **FAST))
    grown = _pixels(sample_images(folder, 4, tiny_ddpm, **FAST))
    assert len(grown) == 4 and all(np.array_equal(a, b) for a, b in zip(first, grown))
    with pytest.raises(ValueError, match="random_state: 0 there, 1 now"):
        sample_images(folder, 4, tiny_ddpm, random_state=1, **FAST)
    with pytest.raises(ValueError, match="num_inference_steps"):
        sample_images(folder, 4, tiny_ddpm, num_inference_steps=3, batch_size=2, progress=False)
    stray = tmp_path / "stray"
    stray.mkdir()
    Image.new("RGB", (4, 4)).save(stray / "sample_000000.png")
    with pytest.raises(ValueError, match="not written by sample_images"):
        sample_images(stray, 1, tiny_ddpm, **FAST)


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_learned_variance_unets_sample_with_both_schedulers(tmp_path, scheduler):
    learned = Backbone(tiny_unet(), source="learn_sigma")  # 6 output channels: ε and the variance
    paths = sample_images(tmp_path, 2, learned, scheduler=scheduler, **FAST)
    assert _pixels(paths)[0].shape == (32, 32, 3)
    chosen = sampling_scheduler(learned, scheduler)
    assert type(chosen).__name__ == {"ddpm": "DDPMScheduler", "ddim": "_EpsilonDDIMScheduler"}[scheduler]
    if scheduler == "ddpm":
        assert chosen.config.variance_type == "learned_range"


def test_bad_arguments(tmp_path, tiny_ddpm):
    with pytest.raises(ValueError, match="n_samples"):
        sample_images(tmp_path, 0, tiny_ddpm)
    with pytest.raises(TypeError, match="random_state"):
        sample_images(tmp_path, 1, tiny_ddpm, random_state=None)
    with pytest.raises(ValueError, match="scheduler"):
        sampling_scheduler(tiny_ddpm, "euler")


def test_ancestral_sampling_draws_other_images_than_ddim(tmp_path, tiny_ddpm):
    ddpm = _pixels(sample_images(tmp_path / "ddpm", 2, tiny_ddpm, scheduler="ddpm", **FAST))
    ddim = _pixels(sample_images(tmp_path / "ddim", 2, tiny_ddpm, scheduler="ddim", **FAST))
    assert ddpm[0].shape == (32, 32, 3) and not np.array_equal(ddpm[0], ddim[0])
    assert np.array_equal(ddpm[1], _pixels(sample_images(tmp_path / "again", 2, tiny_ddpm, scheduler="ddpm",
                                                         **FAST))[1])  # its per-step noise is seeded too
