"""What a transformer shares with others: the backbone, the activation cache, the batch of a forward pass.

Clones and grid-search candidates share one backbone and one cache; neither may change what is
computed, and using one transformer must not change the state another one sees.
"""

from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas  # noqa: F401  (set_output="pandas" needs it to be importable)
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_ddpm import ActivationCache, DDPMFeatureTransformer, MLPEnsembleClassifier, PixelFeatures


def _transformer(backbone, **params):
    params = {"blocks": (3, 6), "steps": (50, 150), "feature_dtype": "float32", **params}
    return DDPMFeatureTransformer(backbone, **params)


def test_an_image_has_the_same_features_whatever_shares_its_forward_pass(tiny_backbone, squares):
    images, _ = squares
    transformer = _transformer(tiny_backbone, batch_size=2).fit(images)
    first = np.asarray(transformer.transform(images[[0, 1, 2, 3]]))  # passes of 2 images
    shuffled = np.asarray(transformer.transform(images[[5, 3, 0, 4, 1, 2]]))  # of 2 images, other company
    np.testing.assert_array_equal(shuffled[2], first[0])
    np.testing.assert_array_equal(shuffled[1], first[3])


def test_cached_features_equal_computed_ones(tiny_backbone, squares):
    images, _ = squares
    cache = ActivationCache()
    # Fill the cache with part of what the next call needs (one step, some images) ...
    _transformer(tiny_backbone, steps=(150,), memory=cache).fit_transform(images[[4, 1, 5, 3]])
    cached = _transformer(tiny_backbone, memory=cache).fit_transform(images[:4])
    assert cache.hits > 0
    # ... so that call computes only the rest, in other batches than a call without the cache.
    computed = _transformer(tiny_backbone, memory=None).fit_transform(images[:4])
    for name, a, b in zip(cached.layer_names, cached.maps, computed.maps):
        assert torch.equal(a, b), f"layer {name} differs with the cache"


def test_grid_search_scores_are_the_same_with_and_without_the_cache(tiny_backbone, squares):
    images, masks = squares

    def grid(memory):
        pipe = Pipeline([
            ("features", DDPMFeatureTransformer(tiny_backbone, memory=memory, batch_size=2)),
            ("clf", MLPEnsembleClassifier(n_estimators=2, max_epochs=2, patience=None, batch_size=128,
                                          max_pixels_per_image=300, random_state=0)),
        ])
        search = GridSearchCV(pipe, {"features__blocks": [(3,), (3, 6)], "features__steps": [(50,), (50, 250)]},
                              cv=KFold(2), refit=False)
        return search.fit(images[:6], masks[:6]).cv_results_["mean_test_score"]

    cache = ActivationCache()
    with_cache = grid(cache)
    # Candidates and folds share the one cache object: most activations are reused, not recomputed.
    assert cache.hits > cache.misses > 0
    np.testing.assert_array_equal(with_cache, grid(None))


def test_set_output_pandas_is_refused_clearly(tiny_backbone, squares):
    images, _ = squares
    transformer = _transformer(tiny_backbone)
    why = r"set_output\(transform='pandas'\) does not apply .* PixelFeatures, per-image feature maps"
    with pytest.raises(ValueError, match=why):
        transformer.set_output(transform="pandas")
    pipe = Pipeline([("features", transformer), ("clf", MLPEnsembleClassifier())])
    with pytest.raises(ValueError, match=why):
        pipe.set_output(transform="pandas")
    # "default", what a scikit-learn user sets on any pipeline, is accepted, and changes nothing.
    assert transformer.set_output(transform="default") is transformer
    assert pipe.set_output(transform="default") is pipe and transformer.set_output() is transformer
    assert isinstance(pipe[0].fit_transform(images[:2]), PixelFeatures)
    # A global pandas output setting leaves the per-pixel features as they are.
    with sklearn.config_context(transform_output="pandas"):
        features = transformer.fit_transform(images[:2])
    assert isinstance(features, PixelFeatures)


def _module_state(unet):
    return {
        "attributes": sorted(unet.__dict__),
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in unet.modules()),
        "devices": {p.device for p in unet.parameters()},
        "training": unet.training,
    }


def test_transform_leaves_the_shared_backbone_untouched(tiny_backbone, squares, monkeypatch):
    images, _ = squares
    compiled = []

    def fake_compile(module, **kwargs):  # torch.compile without its slow first call
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    before = _module_state(tiny_backbone.unet)
    plain = _transformer(tiny_backbone).fit_transform(images[:2])
    with_compile = _transformer(tiny_backbone, compile=True).fit_transform(images[:2])
    assert compiled, "compile=True did not go through torch.compile"
    assert _module_state(tiny_backbone.unet) == before
    for a, b in zip(plain.maps, with_compile.maps):
        assert torch.equal(a, b)


def test_threads_that_share_a_backbone_do_not_see_each_other(tiny_backbone, squares):
    images, _ = squares
    settings = [dict(blocks=(3,), steps=(50,)), dict(blocks=(6, 9), steps=(250,)), dict(blocks=(1, 10), steps=(100,))]
    transformers = [_transformer(tiny_backbone, batch_size=1, **s).fit(images) for s in settings]
    expected = [t.transform(images[:3]) for t in transformers]
    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            results = list(pool.map(lambda t: t.transform(images[:3]), transformers))
            for want, got in zip(expected, results):
                for a, b in zip(want.maps, got.maps):
                    assert torch.equal(a, b)


def test_a_random_state_instance_seeds_the_noise(tiny_backbone, squares):
    images, _ = squares
    a = _transformer(tiny_backbone, random_state=np.random.RandomState(7)).fit(images)
    b = _transformer(tiny_backbone, random_state=np.random.RandomState(7)).fit(images)
    c = _transformer(tiny_backbone, random_state=np.random.RandomState(8)).fit(images)
    assert a.noise_seed_ == b.noise_seed_ != c.noise_seed_
    np.testing.assert_array_equal(np.asarray(a.transform(images[:1])), np.asarray(b.transform(images[:1])))


def test_memory_follows_scikit_learns_convention(tiny_backbone, squares, tmp_path):
    images, _ = squares
    assert DDPMFeatureTransformer().memory is None  # caching is opted into, not a hidden global
    first = _transformer(tiny_backbone, memory=joblib.Memory(tmp_path, verbose=0)).fit_transform(images[:2])
    assert list(tmp_path.glob("*/*.safetensors"))
    fresh = ActivationCache(directory=tmp_path)
    second = _transformer(tiny_backbone, memory=fresh).fit_transform(images[:2])
    assert fresh.hits == 8 and fresh.misses == 0
    for a, b in zip(first.maps, second.maps):
        assert torch.equal(a, b)
    # A Memory without a location caches nothing, as in scikit-learn.
    _transformer(tiny_backbone, memory=joblib.Memory(None)).fit_transform(images[:1])
    with pytest.raises(ValueError, match="memory"):
        _transformer(tiny_backbone, memory=42).fit(images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_transform_does_not_move_the_backbone_of_a_cpu_one(tiny_backbone, squares):
    images, _ = squares
    cpu = _transformer(tiny_backbone).fit(images)
    gpu = sklearn.base.clone(cpu).set_params(device="cuda").fit(images)
    assert gpu.backbone_ is cpu.backbone_
    before = cpu.transform(images[:2])
    gpu.transform(images[:2])
    assert {p.device.type for p in tiny_backbone.unet.parameters()} == {"cpu"}
    after = cpu.transform(images[:2])
    for a, b in zip(before.maps, after.maps):
        assert torch.equal(a, b)
