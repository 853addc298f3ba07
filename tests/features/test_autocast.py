"""Mixed-precision feature extraction: close to float32 on the CPU and on CUDA; "auto" follows the hardware."""

import numpy as np
import pytest
import torch

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.backbone import Backbone, load_backbone, tiny_unet
from sklearn_ddpm.features import ActivationCache

BLOCKS = (3, 6)
STEPS = (50, 250)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (autocast is CUDA-only)")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (2, 40, 48, 3), dtype=np.uint8)


def _features(model, images, device="cpu", autocast_dtype=None, memory=None):
    transformer = DDPMFeatureTransformer(model, blocks=BLOCKS, steps=STEPS, device=device,
                                         autocast_dtype=autocast_dtype, memory=memory, feature_dtype="float32")
    return transformer.fit_transform(images)


def test_bf16_autocast_would_change_cpu_activations():
    # Guards the next test: if CPU autocast left the tiny UNet's activations unchanged, "ignored on
    # CPU" could not be told apart from "applied".
    backbone = Backbone(tiny_unet())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([50, 250])
    fp32 = backbone.decoder_activations(x, t, BLOCKS)
    bf16 = backbone.decoder_activations(x, t, BLOCKS, autocast_dtype=torch.bfloat16)
    assert any(not torch.equal(fp32[b].float(), bf16[b].float()) for b in BLOCKS)


def _assert_close_to_fp32(reference, mixed, autocast_dtype):
    for name, ref, got in zip(reference.layer_names, reference.maps, mixed.maps):
        assert got.dtype == torch.float32  # stored as feature_dtype, whatever the forward computed in
        ref, got = ref.double().flatten(), got.double().flatten()
        relative = (got - ref).norm() / ref.norm()
        cosine = torch.nn.functional.cosine_similarity(ref, got, dim=0)
        assert relative < 0.05, f"layer {name}: relative L2 error {relative:.4f} of {autocast_dtype} vs fp32"
        assert cosine > 0.998, f"layer {name}: cosine {cosine:.5f} of {autocast_dtype} vs fp32"


def test_cpu_bf16_autocast_features_agree_with_fp32(images):
    unet = tiny_unet()
    reference = _features(unet, images)
    mixed = _features(unet, images, autocast_dtype="bfloat16")
    assert any(not torch.equal(a, b) for a, b in zip(reference.maps, mixed.maps))  # applied, not ignored
    _assert_close_to_fp32(reference, mixed, "bfloat16")


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_is_bf16_only_on_cpus_with_bf16_instructions(images, monkeypatch, fast_bf16):
    from sklearn_ddpm.utils import _devices

    monkeypatch.setattr(_devices, "cpu_has_fast_bf16", lambda: fast_bf16)
    unet = tiny_unet()
    auto = _features(unet, images, autocast_dtype="auto")
    expected = _features(unet, images, autocast_dtype="bfloat16" if fast_bf16 else None)
    for got, ref in zip(auto.maps, expected.maps):
        torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_cpu_autocast_and_fp32_do_not_share_cache_entries(images):
    unet = tiny_unet()
    cache = ActivationCache()
    reference = _features(unet, images)  # uncached fp32
    _features(unet, images, autocast_dtype="bfloat16", memory=cache)
    after_bf16 = _features(unet, images, memory=cache)
    for ref, got in zip(reference.maps, after_bf16.maps):
        torch.testing.assert_close(got, ref, rtol=0, atol=0)


@needs_cuda
@pytest.mark.parametrize("autocast_dtype", ["bfloat16", "float16"])
def test_cuda_autocast_features_agree_with_fp32(images, autocast_dtype):
    unet = tiny_unet()
    reference = _features(unet, images, device="cuda")
    mixed = _features(unet, images, device="cuda", autocast_dtype=autocast_dtype)
    _assert_close_to_fp32(reference, mixed, autocast_dtype)


@needs_cuda
def test_cuda_autocast_and_fp32_do_not_share_cache_entries(images):
    unet = tiny_unet()
    cache = ActivationCache()
    reference = _features(unet, images, device="cuda")  # uncached fp32
    _features(unet, images, device="cuda", autocast_dtype="bfloat16", memory=cache)
    after_bf16 = _features(unet, images, device="cuda", memory=cache)
    for ref, got in zip(reference.maps, after_bf16.maps):
        torch.testing.assert_close(got, ref)


@needs_cuda
def test_cuda_autocast_pipeline_matches_fp32_predictions(images):
    from sklearn_ddpm import MLPEnsembleClassifier

    unet = load_backbone(tiny_unet())
    masks = np.zeros(images.shape[:3], dtype=np.int64)
    masks[:, 10:30, 12:36] = 1
    labels = {}
    for autocast_dtype in (None, "bfloat16"):
        features = _features(unet, images, device="cuda", autocast_dtype=autocast_dtype)
        clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0, device="cpu").fit(features, masks)
        labels[autocast_dtype] = clf.predict(features)
    agreement = (labels[None] == labels["bfloat16"]).mean()
    assert agreement > 0.95
