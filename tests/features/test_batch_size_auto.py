"""``batch_size="auto"``: passes sized from the model's activations and a memory budget."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.features import ActivationCache, _batching
from sklearn_ddpm.features._batching import auto_batch_size, forward_bytes_per_image

CPU = torch.device("cpu")


def _decoder(base_channels, size=256):
    """The block shapes of an ADM-256-layout decoder (18 blocks, 6 levels) of a given width."""
    blocks, resolution = [], size // 32
    for level, mult in enumerate((4, 4, 2, 2, 1, 1)):
        for layer in range(3):
            upsampled = layer == 2 and level < 5
            side = resolution * 2 if upsampled else resolution
            blocks.append(SimpleNamespace(channels=base_channels * mult, resolution=(side, side)))
        resolution *= 2
    return blocks


def test_bigger_models_get_smaller_passes():
    sizes = [auto_batch_size(_decoder(width), CPU) for width in (16, 32, 64, 128, 256)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    # the full-width ADM-256 at 256² (1.6 GB per image measured): one image per pass on the CPU
    assert sizes[-1] == 1
    assert auto_batch_size(_decoder(256, size=64), CPU) > 1  # same model, smaller images
    assert auto_batch_size(_decoder(8), CPU) == _batching.MAX_IMAGES["cpu"]


def test_gpu_budget_is_a_share_of_its_memory(monkeypatch):
    blocks = _decoder(256)
    total = 140 * 2**30
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=total))
    expected = int(_batching.GPU_BUDGET_FRACTION * total // forward_bytes_per_image(blocks))
    assert auto_batch_size(blocks, torch.device("cuda")) == expected > auto_batch_size(blocks, CPU)


def _transformer(backbone, **params):
    return DDPMFeatureTransformer(backbone, blocks=(3, 6), steps=(50, 150), **params)


def test_auto_equals_the_explicit_size_it_picks_and_shares_its_cache(tiny_backbone, squares, monkeypatch):
    images, _ = squares
    # a budget of about 3 tiny-UNet images, so "auto" splits the 6 images into passes of 3
    per_image = forward_bytes_per_image(tiny_backbone.decoder_blocks())
    monkeypatch.setattr(_batching, "CPU_BUDGET_BYTES", 3 * per_image + 1)
    cache = ActivationCache()
    auto = _transformer(tiny_backbone, memory=cache).fit(images)
    assert auto.forward_batch_size() == 3
    features = np.asarray(auto.transform(images))
    misses = cache.misses
    explicit = np.asarray(_transformer(tiny_backbone, batch_size=3, memory=cache).fit_transform(images))
    np.testing.assert_array_equal(features, explicit)
    assert cache.misses == misses  # same pass size, same cache keys: all hits
    _transformer(tiny_backbone, batch_size=6, memory=cache).fit_transform(images)
    assert cache.misses > misses  # another pass size computes (its last bits may differ)


def test_auto_is_the_default_and_checked(tiny_backbone, squares):
    images, _ = squares
    assert DDPMFeatureTransformer().batch_size == "auto"
    transformer = _transformer(tiny_backbone).fit(images)
    assert transformer.forward_batch_size() == _batching.MAX_IMAGES["cpu"]  # tiny model: the cap
    assert _transformer(tiny_backbone, batch_size=2).fit(images).forward_batch_size() == 2
    with pytest.raises(ValueError, match="batch_size"):
        _transformer(tiny_backbone, batch_size="big").fit(images)
