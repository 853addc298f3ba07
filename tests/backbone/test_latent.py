"""Stable-Diffusion-style backbones (VAE latents, text-conditioned UNet) on tiny random-init components.

The components are built from configs (no download): an SD-shaped ``UNet2DConditionModel`` (4
up-blocks of 3 resnets, so the SD block numbering), an ``AutoencoderKL`` with a factor-2 latent, a
``CLIPTextModel`` and a ``CLIPTokenizer`` from a vocabulary written here, saved as a
``StableDiffusionPipeline`` folder. Tests with real weights run only when ``SKLEARN_DDPM_SD_FOLDER``
names a local Stable Diffusion 1.x/2.x folder.
"""

import json
import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

pytest.importorskip("transformers")

from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, load_segmenter  # noqa: E402
from sklearn_ddpm.backbone import LatentBackbone, format_decoder_blocks, list_decoder_blocks, load_backbone  # noqa: E402
from sklearn_ddpm.cli import main  # noqa: E402
from sklearn_ddpm.features import ActivationCache, preset_grid  # noqa: E402
from sklearn_ddpm.features._extraction import noise_for, resize_images  # noqa: E402

from ..conftest import make_squares  # noqa: E402

IMAGE = 32  # pixels; latents are 16x16 (VAE factor 2), the UNet's deepest level 2x2


def _stable_diffusion_pipeline_class():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline


def _tokenizer(folder):
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    merges = ["h o", "ho r", "hor s", "hors e</w>"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=12)


def make_components(folder, seed=0):
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=IMAGE // 2, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(8, 16, 16, 16),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    ).eval()
    vae = AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                        sample_size=IMAGE, scaling_factor=0.18215).eval()
    tokenizer = _tokenizer(folder)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=12, bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
    # As SD-1.5's scheduler folder: PNDM with the scaled-linear training schedule.
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    return make_components(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def pipeline(components):
    return _stable_diffusion_pipeline_class()(**components, safety_checker=None, feature_extractor=None,
                                              requires_safety_checker=False)


@pytest.fixture(scope="module")
def sd_folder(pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd") / "tiny-sd"
    pipeline.save_pretrained(str(folder))  # the folder layout diffusers writes for Stable Diffusion
    return folder


@pytest.fixture(scope="module")
def backbone(sd_folder):
    return load_backbone(sd_folder)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, IMAGE, IMAGE, 3), dtype=np.uint8)


# -- loading -----------------------------------------------------------------------------------------
def test_loading_a_pipeline_folder(backbone, components, sd_folder):
    assert isinstance(backbone, LatentBackbone) and backbone.takes_prompt
    for name in ("unet", "vae", "text_encoder"):
        assert _same_weights(getattr(backbone, name), components[name]), name
    assert type(backbone.scheduler).__name__ == "PNDMScheduler"  # the folder's own scheduler
    assert backbone.tokenizer("a horse").input_ids == components["tokenizer"]("a horse").input_ids
    assert backbone.source == str(sd_folder)
    assert backbone.vae_scale_factor == 2 and backbone.image_size == (IMAGE, IMAGE)
    assert backbone.latent_size() == (IMAGE // 2, IMAGE // 2) and backbone.size_multiple == 2 * 8
    # Where it was loaded from does not count; the VAE does.
    assert backbone.fingerprint == LatentBackbone(**components).fingerprint
    other_vae = make_components(sd_folder.parent, seed=1)["vae"]
    assert LatentBackbone(**{**components, "vae": other_vae}).fingerprint != backbone.fingerprint


def test_in_memory_pipeline_and_components(pipeline, components):
    backbone = load_backbone(pipeline)
    assert isinstance(backbone, LatentBackbone)
    assert all(getattr(backbone, name) is components[name] for name in components)  # shared, not copied
    own = LatentBackbone(**components)
    assert load_backbone(own) is own
    rescheduled = load_backbone(own, scheduler=pytest.importorskip("diffusers").DDIMScheduler())
    assert isinstance(rescheduled, LatentBackbone) and rescheduled.unet is own.unet
    assert rescheduled.fingerprint != own.fingerprint
    # A DDPM pipeline object is a (pixel-space) backbone too.
    from diffusers import DDPMPipeline, DDPMScheduler

    from sklearn_ddpm.backbone import Backbone, tiny_unet

    ddpm = DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler(num_train_timesteps=500))
    pixel = load_backbone(ddpm)
    assert type(pixel) is Backbone and pixel.unet is ddpm.unet and pixel.scheduler is ddpm.scheduler


def test_refusals(components, tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="pass its pipeline"):
        load_backbone(components["unet"])
    components["unet"].save_pretrained(tmp_path / "unet_only")
    with pytest.raises(ValueError, match="pass the whole pipeline folder"):
        load_backbone(tmp_path / "unet_only")
    with pytest.raises(ValueError, match="not text-conditioned"):
        DDPMFeatureTransformer(prompt="a horse").fit()
    with pytest.raises(ValueError, match="takes no prompt"):
        load_backbone(None).decoder_activations(torch.zeros(1, 3, 64, 64), torch.tensor([1]), [0], prompt="x")
    # Without transformers an SD folder says which extra to install.
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"sklearn-ddpm\[latent\]"):
        LatentBackbone.from_pretrained(tmp_path)


def test_save_pretrained_round_trip(backbone, tmp_path):
    backbone.save_pretrained(tmp_path / "copy")
    loaded = load_backbone(tmp_path / "copy")
    assert loaded.fingerprint == backbone.fingerprint
    assert torch.equal(loaded.text_embedding("a horse"), backbone.text_embedding("a horse"))
    diffusers_pipeline = _stable_diffusion_pipeline_class().from_pretrained(str(tmp_path / "copy"))
    assert _same_weights(diffusers_pipeline.unet, backbone.unet)


# -- block numbering ---------------------------------------------------------------------------------
def test_block_listing_follows_the_stable_diffusion_layout(backbone, capsys, sd_folder):
    blocks = list_decoder_blocks(backbone)
    # 4 up-blocks x 3 resnets; each up-block's last block is after its upsampler (none in the last).
    assert [b.module_name for b in blocks[:6]] == [
        "up_blocks.0.resnets.0", "up_blocks.0.resnets.1", "up_blocks.0.upsamplers.0",
        "up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.upsamplers.0"]
    assert blocks[-1].module_name == "up_blocks.3.attentions.2"
    assert [b.resolution[0] for b in blocks] == [2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16, 16]  # latent pixels
    assert [b.channels for b in blocks] == [16] * 9 + [8] * 3
    assert [b.has_attention for b in blocks] == [False] * 3 + [True] * 9
    assert list_decoder_blocks(backbone, image_size=64)[-1].resolution == (32, 32)  # image pixels in
    assert format_decoder_blocks(blocks) in _cli_blocks(capsys, sd_folder)


def _cli_blocks(capsys, folder, *options):
    assert main(["blocks", "--model", str(folder), *options]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# LatentBackbone(")
    return out


def test_cli_blocks_image_size_is_in_pixels(capsys, sd_folder):
    last = _cli_blocks(capsys, sd_folder, "--image-size", "64x32").splitlines()[-1].split()
    assert last[:3] == ["11", "8", "32x16"]


# -- features ----------------------------------------------------------------------------------------
def _reference(pipeline, images, steps, prompt, modules, seed, n_draws=1):
    """Hand-written diffusers: VAE mean latents, scheduler.add_noise, the UNet with forward hooks.

    The noise is the transformer's documented one (``noise_for``: draw ``k`` of seed ``s``), averaged
    over ``n_draws`` draws.
    """
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        latents = pipeline.vae.encode(x).latent_dist.mean * pipeline.vae.config.scaling_factor
        text, _ = pipeline.encode_prompt(prompt, "cpu", 1, do_classifier_free_guidance=False)
        named = dict(pipeline.unet.named_modules())
        out = {}
        for t in steps:
            for draw in range(n_draws):
                noise = noise_for(seed, draw, t, latents.shape[1:], per_step=False).expand_as(latents)
                noisy = pipeline.scheduler.add_noise(latents, noise, torch.tensor([t] * len(x)))
                handles = [named[m].register_forward_hook(
                    lambda mod, a, o, key=(t, m): out.setdefault(key, []).append(o[0] if isinstance(o, tuple) else o))
                    for m in modules]
                pipeline.unet(noisy, torch.tensor([t] * len(x)), encoder_hidden_states=text.expand(len(x), -1, -1))
                for handle in handles:
                    handle.remove()
    return {key: torch.stack(values).mean(0) for key, values in out.items()}


def test_features_equal_a_hand_written_diffusers_call(pipeline, sd_folder):
    images = _images(3)
    transformer = DDPMFeatureTransformer(sd_folder, blocks=(2, 4, 11), steps=(10, 400), prompt="a horse",
                                         feature_dtype="float32", batch_size=3, random_state=7).fit(images)
    features = transformer.transform(images)
    assert transformer.image_size_ == (IMAGE, IMAGE) and features.image_sizes.tolist() == [[IMAGE, IMAGE]] * 3
    modules = {2: "up_blocks.0.upsamplers.0", 4: "up_blocks.1.attentions.1", 11: "up_blocks.3.attentions.2"}
    reference = _reference(pipeline, resize_images(images, (IMAGE, IMAGE)), (10, 400), "a horse",
                           modules.values(), seed=7)
    assert len(features.maps) == 6
    for (t, b), tensor in zip(transformer.layer_names_, features.maps):
        expected = reference[(t, modules[b])].permute(0, 2, 3, 1)
        assert tensor.shape == expected.shape  # latent resolution, channels last
        torch.testing.assert_close(tensor, expected, rtol=1e-4, atol=1e-5)
    # The same compact path as pixel backbones: dense features at the image size.
    assert np.asarray(features).shape == (3, IMAGE, IMAGE, transformer.n_features_out_)


def test_prompt_changes_features_and_cache_keys(sd_folder):
    images = _images(2)
    cache = ActivationCache()
    params = dict(blocks=(5,), steps=(261,), feature_dtype="float32", memory=cache)
    empty = DDPMFeatureTransformer(sd_folder, **params).fit(images).transform(images)
    horse = DDPMFeatureTransformer(sd_folder, prompt="a horse", **params).fit(images).transform(images)
    assert not torch.equal(empty.maps[0], horse.maps[0])  # the prompt was not served from the cache
    again = DDPMFeatureTransformer(sd_folder, prompt="a horse", **params).fit(images).transform(images)
    assert cache.hits == 2 and torch.equal(again.maps[0], horse.maps[0])
    uncached = DDPMFeatureTransformer(sd_folder, prompt="a horse", **{**params, "memory": None})
    assert torch.equal(uncached.fit(images).transform(images).maps[0], horse.maps[0])


def test_dift_preset_averages_noise_draws(pipeline, backbone):
    images = _images(2)
    (dift,) = preset_grid("dift", prefix="")
    transformer = DDPMFeatureTransformer(backbone, feature_dtype="float32", batch_size=2,
                                         **{k: v[0] for k, v in dift.items()}).fit(images)
    assert (transformer.blocks_, transformer.steps_, transformer.n_noise_samples) == ((5,), (261,), 8)
    assert transformer.n_features_out_ == 16  # one up-block (block 5: up_blocks.1 after its upsampler), one step
    reference = _reference(pipeline, images, (261,), "", ["up_blocks.1.upsamplers.0"], seed=0, n_draws=8)
    averaged = transformer.transform(images).maps[0]
    torch.testing.assert_close(averaged, reference[(261, "up_blocks.1.upsamplers.0")].permute(0, 2, 3, 1),
                               rtol=1e-4, atol=1e-5)


# -- the product shape -------------------------------------------------------------------------------
def _segmenter(model):
    return Pipeline([
        ("features", DDPMFeatureTransformer(model, blocks=(5,), steps=(50,), memory=ActivationCache())),
        ("clf", MLPEnsembleClassifier(n_estimators=2, max_epochs=2, lr=1e-2, random_state=0,
                                      max_pixels_per_image=300)),
    ])


def test_grid_search_over_blocks_steps_and_presets(backbone):
    images, masks = make_squares(4, size=(IMAGE, IMAGE))
    grid = [{"features__blocks": [(5,), (8, 11)], "features__steps": [(50,), (50, 250)]}] + preset_grid()
    search = GridSearchCV(_segmenter(backbone), grid, cv=2).fit(list(images), list(masks))
    assert len(search.cv_results_["params"]) == 4 + 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(images[:1]).shape == (1, IMAGE, IMAGE)


def test_joblib_round_trip(pipeline, tmp_path):
    images, masks = make_squares(3, size=(IMAGE, IMAGE))
    segmenter = _segmenter(pipeline).set_params(features__prompt="a horse").fit(list(images), list(masks))
    joblib.dump(segmenter, tmp_path / "seg.joblib")
    loaded = joblib.load(tmp_path / "seg.joblib")
    features = loaded.named_steps["features"]
    assert isinstance(features.backbone_, LatentBackbone) and features.model is features.backbone_
    assert features.backbone_.fingerprint == segmenter.named_steps["features"].backbone_.fingerprint
    features.backbone_._fingerprint = None  # recomputed from the restored weights
    assert features.backbone_.fingerprint == segmenter.named_steps["features"].backbone_.fingerprint
    np.testing.assert_array_equal(loaded.predict(images), segmenter.predict(images))
    assert features.prompt == "a horse"


# -- CUDA (skipped without a GPU) ----------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_features_and_nothing_but_the_unet_stays_on_the_gpu(backbone):
    images = _images(2)
    params = dict(blocks=(5, 11), steps=(50,), feature_dtype="float32")
    reference = DDPMFeatureTransformer(backbone, **params).fit(images).transform(images)
    gpu = DDPMFeatureTransformer(backbone, device="cuda", autocast_dtype="bfloat16", **params).fit(images)
    gpu.transform(images)  # the first call makes the UNet's bfloat16 device copy, kept by the backbone
    (unet,) = [model for (device, _, dtype), (model, _) in backbone._models.items() if device.type == "cuda"]
    assert next(unet.parameters()).dtype == torch.bfloat16
    before = torch.cuda.memory_allocated()
    features = gpu.transform(images)
    assert torch.cuda.memory_allocated() == before  # the VAE's device copy was freed, nothing else was kept
    assert next(backbone.vae.parameters()).device.type == "cpu"
    assert next(backbone.text_encoder.parameters()).device.type == "cpu"
    for ours, theirs in zip(features.maps, reference.maps):
        assert (ours - theirs).norm() / theirs.norm() < 0.05


# -- real weights (opt-in) ---------------------------------------------------------------------------
REAL_SD = os.environ.get("SKLEARN_DDPM_SD_FOLDER")


@pytest.mark.skipif(not REAL_SD, reason="needs SKLEARN_DDPM_SD_FOLDER=<a local Stable Diffusion 1.x/2.x folder>")
def test_real_stable_diffusion_folder():
    backbone = load_backbone(REAL_SD)
    blocks = list_decoder_blocks(backbone, image_size=256)
    assert len(blocks) == 12 and [b.channels for b in blocks] == [1280] * 6 + [640] * 3 + [320] * 3
    assert [b.resolution[0] for b in blocks] == [4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 32]
    features = DDPMFeatureTransformer(backbone, blocks=(5,), steps=(261,), image_size=256).fit_transform(_images(1))
    assert features.maps[0].shape == (1, 16, 16, 1280) and torch.isfinite(features.maps[0].float()).all()


# -- everywhere a UNet2DModel works: CLI fit/predict, studies ---------------------------------------------
def test_cli_fit_and_predict_with_a_prompt(sd_folder, tmp_path, capsys):
    from PIL import Image

    images, masks = make_squares(3, size=(IMAGE, IMAGE))
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(tmp_path / "masks" / f"{i}.png")
    seg = tmp_path / "seg.skddpm"
    assert main(["fit", str(tmp_path / "images"), str(tmp_path / "masks"), "--model", str(sd_folder),
                 "--prompt", "a horse", "--blocks", "5", "8", "--steps", "50", "--n-estimators", "1",
                 "--max-epochs", "2", "-o", str(seg), "--threads", "1", "--quiet"]) == 0
    features = load_segmenter(seg)[0]
    assert isinstance(features.backbone_, LatentBackbone) and features.prompt == "a horse"
    assert main(["predict", str(seg), str(tmp_path / "images"), "-o", str(tmp_path / "out"), "--threads", "1",
                 "--quiet"]) == 0
    written = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in written] == ["0", "1", "2"]
    assert np.asarray(Image.open(written[0])).shape == (IMAGE, IMAGE)


def test_block_step_sweep_study(backbone):
    from sklearn_ddpm.studies import block_step_sweep

    images, masks = make_squares(4, size=(IMAGE, IMAGE))
    table = block_step_sweep(images[:2], masks[:2], images[2:], masks[2:], model=backbone, blocks=(5, 11),
                             steps=(50,), transformer_params={"prompt": "a horse"}, progress=False)
    assert table["block"].tolist() == [5, 11] and table["n_features"].tolist() == [16, 8]
    assert table["miou"].between(0, 1).all()


def test_hub_id_from_offline_cache(backbone, tmp_path):
    from .test_loading import _add_to_hub_cache

    cache = tmp_path / "hub"
    _add_to_hub_cache(cache, "test-org/tiny-sd", backbone.save_pretrained)
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
    env.pop("HF_ENDPOINT", None)
    script = ("import sys; from sklearn_ddpm.backbone import load_backbone; b = load_backbone('test-org/tiny-sd'); "
              "print(type(b).__name__, b.fingerprint, b.source)")
    # A fresh interpreter: huggingface_hub and diffusers read these variables when imported.
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["LatentBackbone", backbone.fingerprint, "test-org/tiny-sd"]


_WITHOUT_TRANSFORMERS = """
import importlib.abc, importlib.util, json, sys

class HideTransformers(importlib.abc.MetaPathFinder):  # as if it were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "transformers" or name.startswith("transformers."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, HideTransformers())
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name.split(".")[0] == "transformers" else find_spec(name, *a, **k)

import numpy as np
from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.backbone import tiny_unet

images = np.zeros((1, 32, 32, 3), np.uint8)
shape = DDPMFeatureTransformer(tiny_unet(), blocks=(3,), steps=(50,)).fit_transform(images).shape
try:
    DDPMFeatureTransformer(sys.argv[1]).fit()
    error = None
except ImportError as exc:
    error = str(exc)
print(json.dumps({"shape": list(shape), "error": error, "imported": "transformers" in sys.modules}))
"""


def test_works_without_transformers(sd_folder):
    completed = subprocess.run([sys.executable, "-c", _WITHOUT_TRANSFORMERS, str(sd_folder)], capture_output=True,
                               text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["shape"] == [1, 32, 32, 32] and not result["imported"]
    assert "pip install 'sklearn-ddpm[latent]'" in result["error"]
