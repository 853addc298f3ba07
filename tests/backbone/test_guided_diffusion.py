"""guided-diffusion checkpoints converted to diffusers give guided-diffusion's own numbers.

The reference is OpenAI's ``guided_diffusion`` package (``pip install guided-diffusion-sdk``, a
packaging of openai/guided-diffusion whose ``unet.py`` is the upstream file). Every test model is a
small random-init ``UNetModel`` whose parameters are then all perturbed with noise: guided-diffusion
zero-initialises the last convolution of every resblock, every attention ``proj_out`` and the output
convolution, so without the noise a wrong mapping of those layers (or a wrong q/k/v row order)
would still pass.
"""

import warnings

import pytest
import torch

from sklearn_ddpm.backbone import (
    Backbone,
    convert_guided_diffusion,
    decoder_block_modules,
    load_backbone,
    load_guided_diffusion,
    noise_scheduler,
    tiny_unet,
)

with warnings.catch_warnings():
    # guided_diffusion.nn uses the deprecated torch.cuda.amp decorators.
    warnings.simplefilter("ignore", FutureWarning)
    from guided_diffusion import gaussian_diffusion
    from guided_diffusion.script_util import create_model
    from guided_diffusion.unet import UNetModel

TIMESTEPS = (0, 371, 999)

# The paper's ADM-256 flags at a fraction of the width and resolution, and the 128/64 layouts.
ADM256_SMALL = dict(image_size=64, num_channels=32, num_res_blocks=2, channel_mult="1,1,2,2,4,4", learn_sigma=True,
                    attention_resolutions="32,16,8", num_head_channels=16, use_scale_shift_norm=True,
                    resblock_updown=True)
MODELS = {
    # 18 decoder blocks, 2/4/8 heads of 16 channels, legacy q/k/v order: the paper's layout.
    "adm256-legacy": (ADM256_SMALL, dict(num_head_channels=16)),
    "adm256-new-order": (dict(ADM256_SMALL, use_new_attention_order=True),
                         dict(num_head_channels=16, use_new_attention_order=True)),
    # ADM-128's channel_mult with convolution resampling, additive time embedding, 3 output channels
    # and one resblock per level (so the upsampler sits in every second output block).
    "adm128-conv-1res": (dict(image_size=64, num_channels=32, num_res_blocks=1, channel_mult="1,1,2,3,4",
                              learn_sigma=False, attention_resolutions="16,8", num_head_channels=32,
                              use_scale_shift_norm=False, resblock_updown=False),
                         dict(num_head_channels=32, attention_resolutions="16,8")),
    # ADM-64's channel_mult, a fixed head count (num_heads=4, num_head_channels=-1), three resblocks.
    "adm64-heads-3res": (dict(image_size=32, num_channels=32, num_res_blocks=3, channel_mult="1,2,2,2",
                              learn_sigma=True, attention_resolutions="16,8", num_heads=4, num_head_channels=-1,
                              use_scale_shift_norm=True, resblock_updown=False),
                         dict(num_heads=4, attention_resolutions="16,8")),
}
# Max abs error reached (float32, CPU) relative to the activation's max abs value; see the report.
RTOL = 1e-5


def _reference(flags, seed=0):
    torch.manual_seed(seed)
    model = create_model(**flags).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def _activations(reference, backbone, size, seed=1):
    """Return (reference output, our output, reference blocks, our blocks) for TIMESTEPS."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(TIMESTEPS), 3, size, size, generator=generator)
    t = torch.tensor(TIMESTEPS)
    ref_blocks, our_blocks = {}, {}

    def recorder(store, k):
        def hook(module, args, output):
            store[k] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = [block.register_forward_hook(recorder(ref_blocks, k)) for k, block in enumerate(reference.output_blocks)]
    handles += [module.register_forward_hook(recorder(our_blocks, k))
                for k, (_, module) in enumerate(decoder_block_modules(backbone.unet))]
    try:
        with torch.no_grad():
            ref_out = reference(x, t)
            our_out = backbone.unet(x, t).sample
    finally:
        for handle in handles:
            handle.remove()
    return ref_out, our_out, ref_blocks, our_blocks


def _rel_err(ours, ref):
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request):
    flags, overrides = MODELS[request.param]
    reference = _reference(flags)
    return request.param, flags, reference, convert_guided_diffusion(reference.state_dict(), **overrides)


def test_noise_prediction_and_every_decoder_block_match(converted):
    name, flags, reference, backbone = converted
    ref_out, our_out, ref_blocks, our_blocks = _activations(reference, backbone, flags["image_size"])
    assert our_out.shape == ref_out.shape == (len(TIMESTEPS), 6 if flags["learn_sigma"] else 3,
                                              flags["image_size"], flags["image_size"])
    errors = {"out": _rel_err(our_out, ref_out)}
    assert len(our_blocks) == len(ref_blocks) == len(reference.output_blocks)
    for k in ref_blocks:
        assert our_blocks[k].shape == ref_blocks[k].shape, k
        errors[k] = _rel_err(our_blocks[k], ref_blocks[k])
    # Per timestep too: a time-embedding mistake could hide behind another sample's larger values.
    for i in range(len(TIMESTEPS)):
        errors[f"out@t={TIMESTEPS[i]}"] = _rel_err(our_out[i], ref_out[i])
    worst = max(errors, key=errors.get)
    block_abs = max((our_blocks[k] - ref_blocks[k]).abs().max().item() for k in ref_blocks)
    print(f"{name}: max relative error {errors[worst]:.2e} at {worst}; max abs error: output "
          f"{(our_out - ref_out).abs().max().item():.2e}, decoder blocks {block_abs:.2e}")
    assert errors[worst] < RTOL, (worst, errors[worst])


def test_converted_config_is_the_checkpoints(converted):
    name, flags, reference, backbone = converted
    config = backbone.unet.config
    assert config.sample_size == flags["image_size"]  # inferred from the attention levels
    assert config.norm_eps == 1e-5 and config.norm_num_groups == 32 and config.attn_norm_num_groups == 32
    assert config.resnet_time_scale_shift == ("scale_shift" if flags["use_scale_shift_norm"] else "default")
    assert config.layers_per_block == flags["num_res_blocks"]
    assert sum(p.numel() for p in backbone.unet.parameters()) == sum(p.numel() for p in reference.parameters())
    assert not backbone.unet.training
    assert backbone.scheduler.config.num_train_timesteps == 1000


def test_wrong_attention_order_or_heads_is_detected():
    # The negative control: the perturbed test models are sensitive to exactly the mistakes that
    # the weights cannot reveal.
    flags, overrides = MODELS["adm256-legacy"]
    reference = _reference(flags)
    size = flags["image_size"]
    for wrong in (dict(overrides, use_new_attention_order=True), dict(num_head_channels=32)):
        backbone = convert_guided_diffusion(reference.state_dict(), **wrong)
        ref_out, our_out, _, _ = _activations(reference, backbone, size)
        assert _rel_err(our_out, ref_out) > 1e-3, wrong


def test_paper_adm256_layout_full_size_matches_parameter_for_parameter():
    # The real 552.8 M-parameter lsun_horse.pt/ffhq.pt architecture, on the meta device (no memory).
    flags = dict(image_size=256, num_channels=256, num_res_blocks=2, learn_sigma=True, attention_resolutions="32,16,8",
                 num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True)
    from diffusers import UNet2DModel

    from sklearn_ddpm.backbone._guided_diffusion import _convert_weights, _infer_layout, _unet_config

    with torch.device("meta"):
        reference = create_model(**flags)
        state_dict = reference.state_dict()
        layout = _infer_layout(state_dict)
        unet = UNet2DModel(**_unet_config(layout, 256, 64))
    converted = _convert_weights(state_dict, layout, new_order=False, head_dim=64)
    expected = unet.state_dict()
    assert converted.keys() == expected.keys()
    assert all(converted[k].shape == expected[k].shape for k in expected)
    assert sum(v.numel() for v in converted.values()) == 552_814_086
    assert unet.config.block_out_channels == (256, 256, 512, 512, 1024, 1024)
    assert unet.config.attention_head_dim == 64 and unet.config.out_channels == 6
    assert unet.config.down_block_types[:3] == ("ResnetDownsampleBlock2D",) * 3
    assert unet.config.down_block_types[3:] == ("AttnDownBlock2D",) * 3


def test_noise_schedules_match_guided_diffusion():
    linear = gaussian_diffusion.get_named_beta_schedule("linear", 1000)
    torch.testing.assert_close(noise_scheduler().betas.double(), torch.from_numpy(linear), rtol=1e-6, atol=1e-9)
    state_dict = _reference(MODELS["adm256-legacy"][0]).state_dict()
    for schedule, steps in (("cosine", 1000), ("linear", 250)):
        backbone = convert_guided_diffusion(state_dict, num_head_channels=16, noise_schedule=schedule,
                                            diffusion_steps=steps)
        expected = torch.from_numpy(gaussian_diffusion.get_named_beta_schedule(schedule, steps))
        torch.testing.assert_close(backbone.scheduler.betas.double(), expected, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# Files, flags and errors
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A guided-diffusion .pt whose attention widths are multiples of 64, so no flag is needed."""
    flags = dict(image_size=32, num_channels=64, num_res_blocks=1, channel_mult="1,1,2", learn_sigma=True,
                 attention_resolutions="32,16,8", num_head_channels=64, use_scale_shift_norm=True,
                 resblock_updown=True)
    reference = _reference(flags)
    path = tmp_path_factory.mktemp("gd") / "small.pt"
    torch.save(reference.state_dict(), path)
    return path, flags, reference


def test_load_guided_diffusion_file_with_defaults(small_checkpoint):
    path, flags, reference = small_checkpoint
    for backbone in (load_guided_diffusion(path), load_backbone(path), load_backbone(str(path))):
        assert isinstance(backbone, Backbone)
        assert backbone.image_size == (32, 32) and backbone.source == str(path)
        assert backbone.unet.config.attention_head_dim == 64
        ref_out, our_out, _, _ = _activations(reference, backbone, 32)
        assert _rel_err(our_out, ref_out) < RTOL


def test_whole_model_flags_dict_is_accepted_and_checked(small_checkpoint):
    path, flags, reference = small_checkpoint
    model_flags = dict(flags, class_cond=False, diffusion_steps=1000, dropout=0.1, noise_schedule="linear",
                       use_fp16=True, num_heads=4, num_heads_upsample=-1, use_checkpoint=False)
    backbone = load_guided_diffusion(path, **model_flags)
    assert backbone.image_size == (32, 32)
    with pytest.raises(ValueError, match="learn_sigma=True"):
        load_guided_diffusion(path, **dict(model_flags, learn_sigma=False))
    with pytest.raises(ValueError, match="num_channels=64"):
        load_guided_diffusion(path, num_channels=128)
    with pytest.raises(TypeError, match="unknown guided-diffusion flag"):
        load_guided_diffusion(path, num_chanels=64)


def test_wrapped_and_prefixed_state_dicts(small_checkpoint):
    path, flags, reference = small_checkpoint
    state_dict = reference.state_dict()
    expected = convert_guided_diffusion(state_dict).fingerprint
    assert convert_guided_diffusion({"state_dict": state_dict}).fingerprint == expected
    assert convert_guided_diffusion({f"module.{k}": v for k, v in state_dict.items()}).fingerprint == expected
    half = {k: v.half() for k, v in state_dict.items()}  # use_fp16 checkpoints convert to float32
    assert next(convert_guided_diffusion(half).unet.parameters()).dtype == torch.float32


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="not a state dict"):
        load_guided_diffusion(path)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 definitely not a checkpoint" * 10)
    with pytest.raises(ValueError, match="not a state dict"):
        load_backbone(corrupt)
    with pytest.raises(ValueError, match="not a state dict"):
        convert_guided_diffusion({"a": 1})
    with pytest.raises(FileNotFoundError):
        load_guided_diffusion(tmp_path / "missing.pt")


def test_pickled_object_is_refused(tmp_path):
    # weights_only=True: a checkpoint that would run code on unpickling is rejected, not executed.
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match="not a state dict"):
        load_guided_diffusion(path)


def test_other_architecture_names_what_is_missing():
    with pytest.raises(ValueError, match=r"missing time_embed\.0\.weight.*diffusers UNet2DModel"):
        convert_guided_diffusion(tiny_unet().state_dict())
    with pytest.raises(ValueError, match="missing"):
        convert_guided_diffusion({"weight": torch.zeros(3)})


def test_extra_tensors_are_not_silently_dropped(small_checkpoint):
    state_dict = dict(small_checkpoint[2].state_dict(), **{"input_blocks.1.0.extra.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="no place"):
        convert_guided_diffusion(state_dict)


def test_mismatched_image_size(small_checkpoint):
    state_dict = small_checkpoint[2].state_dict()
    with pytest.raises(ValueError, match=r"image_size=64 does not match.*image_size=32"):
        convert_guided_diffusion(state_dict, image_size=64)
    with pytest.raises(ValueError, match="not divisible by 4"):
        convert_guided_diffusion(state_dict, image_size=30)
    # Other attention_resolutions can make another size consistent.
    backbone = convert_guided_diffusion(state_dict, image_size=64, attention_resolutions="64,32,16")
    assert backbone.image_size == (64, 64)


def test_heads_cannot_be_guessed_for_narrow_attention():
    state_dict = _reference(MODELS["adm256-legacy"][0]).state_dict()
    with pytest.raises(ValueError, match="num_head_channels= or num_heads="):
        convert_guided_diffusion(state_dict)
    with pytest.raises(ValueError, match="single attention_head_dim"):
        convert_guided_diffusion(state_dict, num_heads=2)  # widths 32, 64, 128: head widths differ


def test_unrepresentable_configurations_are_refused():
    half_first = UNetModel(image_size=32, in_channels=3, model_channels=64, out_channels=3, num_res_blocks=1,
                           attention_resolutions=(2,), channel_mult=(0.5, 1), num_head_channels=32)
    with pytest.raises(ValueError, match=r"channel_mult\[0\]"):
        convert_guided_diffusion(half_first.state_dict(), num_head_channels=32)
    conditional = create_model(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2",
                               attention_resolutions="16", class_cond=True, num_head_channels=32)
    with pytest.raises(ValueError, match="class-conditional"):
        convert_guided_diffusion(conditional.state_dict(), num_head_channels=32)
