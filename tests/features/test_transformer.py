import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.exceptions import NotFittedError

from sklearn_ddpm import ActivationCache, DDPMFeatureTransformer, PixelFeatures
from sklearn_ddpm.backbone import decoder_block_modules, list_decoder_blocks
from sklearn_ddpm.features import auto_blocks
from sklearn_ddpm.features._extraction import noise_for, resize_images, to_model_input


def _transformer(backbone, **params):
    params = {"blocks": (3, 6), "steps": (50, 150), "memory": None, **params}
    return DDPMFeatureTransformer(backbone, **params)


def test_feature_shapes_follow_blocks_and_steps(tiny_backbone, squares):
    images, _ = squares
    transformer = _transformer(tiny_backbone).fit(images)
    features = transformer.transform(images)
    channels = {b.index: b.channels for b in list_decoder_blocks(tiny_backbone.unet)}
    expected = 2 * (channels[3] + channels[6])
    assert isinstance(features, PixelFeatures)
    assert features.shape == (len(images), 40, 40, expected)
    assert transformer.n_features_out_ == expected
    assert features.layer_names == [(50, 3), (50, 6), (150, 3), (150, 6)]
    assert features.dtype == torch.float16
    assert len(transformer.get_feature_names_out()) == expected


def test_same_random_state_gives_same_features_and_other_seed_differs(tiny_backbone, squares):
    images, _ = squares
    a = np.asarray(_transformer(tiny_backbone, random_state=3).fit_transform(images[:2]))
    b = np.asarray(_transformer(tiny_backbone, random_state=3).fit_transform(images[:2]))
    c = np.asarray(_transformer(tiny_backbone, random_state=4).fit_transform(images[:2]))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_features_of_an_image_do_not_depend_on_its_batch(tiny_backbone, squares):
    images, _ = squares
    alone = np.asarray(_transformer(tiny_backbone, batch_size=1).fit_transform(images[:1]))
    batched = np.asarray(_transformer(tiny_backbone, batch_size=4).fit_transform(images[:4]))
    np.testing.assert_allclose(alone[0], batched[0], atol=2e-3)


def test_activations_equal_a_hand_run_of_the_unet(tiny_backbone, squares):
    """Block 6 at t=150 equals the hooked module's output for x_t = sqrt(a)x0 + sqrt(1-a)eps."""
    images, _ = squares
    transformer = _transformer(tiny_backbone, blocks=(6,), steps=(150,), feature_dtype="float32").fit(images)
    features = transformer.transform(images[:2])
    unet, scheduler = tiny_backbone.unet, tiny_backbone.scheduler
    x0 = to_model_input(resize_images(list(images[:2]), (32, 32)))
    eps = noise_for(0, 0, 150, (3, 32, 32), per_step=False)
    alpha = scheduler.alphas_cumprod[150]
    x_t = alpha.sqrt() * x0 + (1 - alpha).sqrt() * eps
    captured = {}
    handle = decoder_block_modules(unet)[6][1].register_forward_hook(lambda m, a, o: captured.setdefault("out", o))
    with torch.no_grad():
        unet(x_t, torch.tensor([150, 150]))
    handle.remove()
    expected = captured["out"].permute(0, 2, 3, 1)
    torch.testing.assert_close(features.maps[0], expected, atol=1e-5, rtol=1e-5)


def test_bilinear_upsampling_matches_interpolate(tiny_backbone):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (37, 53, 3), dtype=np.uint8), rng.integers(0, 255, (64, 30, 3), dtype=np.uint8)]
    features = _transformer(tiny_backbone, feature_dtype="float32").fit_transform(images)
    dense = features.to_dense()
    for i, image in enumerate(images):
        expected = (
            torch.cat(
                [
                    F.interpolate(
                        m[i : i + 1].permute(0, 3, 1, 2), size=image.shape[:2], mode="bilinear", align_corners=False
                    )
                    for m in features.maps
                ],
                dim=1,
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        np.testing.assert_allclose(dense[i], expected, atol=1e-5)


def test_compact_float16_equals_dense_float32_within_half_precision(tiny_backbone, squares):
    images, _ = squares
    compact = _transformer(tiny_backbone).fit_transform(images[:3])
    dense = _transformer(tiny_backbone, output="dense", feature_dtype="float32").fit_transform(images[:3])
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32
    scale = np.abs(dense).max()
    np.testing.assert_allclose(np.asarray(compact), dense, atol=scale * 2e-3)


def test_noise_variants(tiny_backbone, squares):
    images, _ = squares
    shared = np.asarray(_transformer(tiny_backbone, noise="shared").fit_transform(images[:1]))
    per_step = np.asarray(_transformer(tiny_backbone, noise="per_step").fit_transform(images[:1]))
    averaged = np.asarray(_transformer(tiny_backbone, n_noise_samples=3).fit_transform(images[:1]))
    t = _transformer(tiny_backbone)
    t.fit(images)
    n50 = t.n_features_out_ // 2
    # the first step's noise is the same draw under both policies? No: per-step noise is seeded by the step.
    assert np.abs(shared[..., n50:] - per_step[..., n50:]).max() > 1e-3
    assert np.abs(shared - averaged).max() > 1e-3
    # averaging over draws reduces the spread between two seeds
    other = np.asarray(_transformer(tiny_backbone, n_noise_samples=3, random_state=9).fit_transform(images[:1]))
    single_other = np.asarray(_transformer(tiny_backbone, random_state=9).fit_transform(images[:1]))
    assert np.abs(averaged - other).mean() < np.abs(shared - single_other).mean()


def test_activation_cache_avoids_recomputation(tiny_backbone, squares, monkeypatch):
    images, _ = squares
    cache = ActivationCache()
    calls = []
    original = tiny_backbone.unet.forward
    monkeypatch.setattr(tiny_backbone.unet, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = _transformer(tiny_backbone, memory=cache, batch_size=1).fit_transform(images[:2])
    n_first = len(calls)
    again = _transformer(tiny_backbone, memory=cache, batch_size=1, blocks=(6,), steps=(150,)).fit_transform(images[:2])
    assert n_first == 4 and len(calls) == n_first  # a subset of what was computed: no UNet run
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first.select([(150, 6)])))
    _transformer(tiny_backbone, memory=cache, batch_size=1, random_state=5).fit_transform(images[:2])
    assert len(calls) == n_first + 4  # another noise seed is another setting


def test_disk_cache_round_trip(tiny_backbone, squares, tmp_path):
    images, _ = squares
    first = _transformer(tiny_backbone, memory=str(tmp_path)).fit_transform(images[:2])
    assert list(tmp_path.glob("*/*.safetensors"))
    fresh = ActivationCache(directory=tmp_path)
    second = _transformer(tiny_backbone, memory=fresh).fit_transform(images[:2])
    assert fresh.hits == 8 and fresh.misses == 0
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_cache_respects_its_size_bound():
    cache = ActivationCache(max_bytes=100)
    for i in range(10):
        cache.put(i, torch.zeros(10))  # 40 bytes each
    assert cache.nbytes <= 100 and cache.get(0) is None and cache.get(9) is not None


def test_auto_blocks():
    assert auto_blocks(18) == (5, 6, 7, 8, 12)
    assert all(0 <= b < 12 for b in auto_blocks(12))


@pytest.mark.parametrize(
    "X, message",
    [
        (np.zeros((2, 8, 8), np.uint8), "shape"),
        (np.zeros((8, 8, 3), np.uint8), "single image"),
        ([np.zeros((8, 8, 4), np.uint8)], "RGBA"),
        ([np.zeros((8, 8), np.uint8)], "grayscale"),
        ([np.full((8, 8, 3), np.nan)], "NaN"),
        ([np.full((8, 8, 3), 3.0)], r"\[0, 1\]"),
        ([np.zeros((8, 8, 3), dtype=object)], "dtype"),
        ([], "no images"),
    ],
)
def test_bad_images_are_rejected_clearly(tiny_backbone, X, message):
    transformer = _transformer(tiny_backbone).fit(None)
    with pytest.raises((ValueError, TypeError), match=message):
        transformer.transform(X)


def test_bad_parameters(tiny_backbone):
    with pytest.raises(ValueError, match="do not exist"):
        _transformer(tiny_backbone, blocks=(12,)).fit(None)
    with pytest.raises(ValueError, match="outside the schedule"):
        _transformer(tiny_backbone, steps=(1000,)).fit(None)
    with pytest.raises(ValueError, match="divisible"):
        _transformer(tiny_backbone, image_size=36).fit(None)
    with (
        pytest.raises(RuntimeError, match="CUDA is not available")
        if not torch.cuda.is_available()
        else pytest.raises(ValueError)
    ):
        _transformer(tiny_backbone, device="cuda" if not torch.cuda.is_available() else "bogus").fit(None)


def test_unfitted_transform_raises(tiny_backbone, squares):
    with pytest.raises(NotFittedError):
        _transformer(tiny_backbone).transform(squares[0])


def test_float_images_in_unit_range_equal_uint8(tiny_backbone, squares):
    images, _ = squares
    a = np.asarray(_transformer(tiny_backbone).fit_transform(images[:1]))
    b = np.asarray(_transformer(tiny_backbone).fit_transform(images[:1] / 255.0))
    np.testing.assert_array_equal(a, b)
