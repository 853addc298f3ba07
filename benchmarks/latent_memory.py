"""Memory of Stable Diffusion 1.5 as a feature backbone at 512², from its real shapes (no weights needed).

The SD-1.5 UNet, VAE and CLIP text encoder are built from their published configurations on
PyTorch's ``meta`` device (shapes without storage), so parameter counts are exact (and checked
against SD-1.5's: 859,520,964 / 83,653,863 / 123,060,480). A ``meta`` forward pass of the UNet on
a 64² latent (a 512² image) with one hook per module gives every activation's shape; the byte
figures below are arithmetic on those shapes, not measured allocations:

- weights: float32 and half precision (the UNet's device copy under ``autocast_dtype`` on CUDA);
- per image in the UNet (half precision, as under autocast): the skip tensors the down path keeps
  for the up path, the largest single module output, and the self-attention score matrix of the
  64² level if it were materialized (PyTorch's fused SDPA kernels on CUDA do not);
- the VAE encoder's largest activation at 512² (it runs in float32, and only while encoding);
- the compact features kept per image (float16) for the ``"dift"`` and ``"paper"`` presets.

It is an estimate of what the GPU holds, not a measurement of a peak (allocator overhead,
workspace and transient copies come on top). ``--quick`` uses a tiny configuration (smoke test).

Examples
--------
    python benchmarks/latent_memory.py           # seconds; writes benchmarks/results/latent_memory.json
"""

import math

import _common

NAME = "latent_memory"
IMAGE = 512
BATCH = 8  # DDPMFeatureTransformer's default batch_size
SD15_PARAMS = {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}


def sd15_configs(quick=False):
    """Keyword arguments of SD-1.5's UNet2DConditionModel, AutoencoderKL and CLIPTextConfig (its config.json files)."""
    width = 32 if quick else 320
    unet = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
                block_out_channels=(width, 2 * width, 4 * width, 4 * width), attention_head_dim=8,
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                norm_num_groups=32)
    vae_width = 32 if quick else 128
    vae = dict(block_out_channels=(vae_width, 2 * vae_width, 4 * vae_width, 4 * vae_width), layers_per_block=2,
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               latent_channels=4, sample_size=IMAGE, scaling_factor=0.18215)
    text = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=2 if quick else 12,
                num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
    return unet, vae, text


def build(quick=False):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet_kwargs, vae_kwargs, text_kwargs = sd15_configs(quick)
    with torch.device("meta"):
        return (UNet2DConditionModel(**unet_kwargs).eval(), AutoencoderKL(**vae_kwargs).eval(),
                CLIPTextModel(CLIPTextConfig(**text_kwargs)).eval())


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def unet_activations(unet, latent):
    """Values per image: skip tensors kept for the up path, the largest module output, attention scores."""
    import torch

    skips, largest = [], [0]

    def keep_skips(module, args, output):
        skips.extend(output[1])  # down blocks return (hidden_states, res_samples)

    def track(module, args, output):
        tensor = output[0] if isinstance(output, tuple) else output
        if torch.is_tensor(tensor):
            largest[0] = max(largest[0], tensor[0].numel())

    handles = [unet.conv_in.register_forward_hook(lambda m, a, o: skips.append(o))]
    handles += [block.register_forward_hook(keep_skips) for block in unet.down_blocks]
    handles += [m.register_forward_hook(track) for name, m in unet.named_modules() if name]
    x = torch.zeros(1, unet.config.in_channels, latent, latent, device="meta")
    text = torch.zeros(1, 77, unet.config.cross_attention_dim, device="meta")
    with torch.inference_mode():
        unet(x, torch.tensor([0], device="meta"), encoder_hidden_states=text)
    for handle in handles:
        handle.remove()
    heads = unet.config.attention_head_dim  # SD-1.5's config names the number of heads so (8)
    return {"skip_values": sum(s[0].numel() for s in skips), "largest_output_values": largest[0],
            "attention_scores_values_64": heads * (latent * latent) ** 2}


def vae_encoder_largest(vae):
    import torch

    largest = [0]

    def track(module, args, output):
        if torch.is_tensor(output):
            largest[0] = max(largest[0], output[0].numel())

    handles = [m.register_forward_hook(track) for name, m in vae.encoder.named_modules() if name]
    with torch.inference_mode():
        vae.encode(torch.zeros(1, 3, IMAGE, IMAGE, device="meta"))
    for handle in handles:
        handle.remove()
    return largest[0]


def feature_bytes(blocks, presets):
    """float16 bytes per image of each preset's compact features (one map per step and block)."""
    from sklearn_ddpm.features import FEATURE_PRESETS, auto_blocks

    by_index = {b.index: b for b in blocks}
    result = {}
    for name in presets:
        preset = FEATURE_PRESETS[name]
        chosen = auto_blocks(len(blocks)) if preset["blocks"] == "auto" else preset["blocks"]
        values = sum(by_index[b].channels * math.prod(by_index[b].resolution) for b in chosen)
        result[name] = {"blocks": list(chosen), "steps": list(preset["steps"]),
                        "bytes": 2 * values * len(preset["steps"])}
    return result


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    from sklearn_ddpm.backbone._blocks import trace_decoder_blocks

    unet, vae, text_encoder = build(args.quick)
    params = {"unet": n_params(unet), "vae": n_params(vae), "vae_encoder": n_params(vae.encoder),
              "text_encoder": n_params(text_encoder)}
    if not args.quick:
        assert {k: params[k] for k in SD15_PARAMS} == SD15_PARAMS, params
    latent = IMAGE // 2 ** (len(vae.config.block_out_channels) - 1)
    blocks = trace_decoder_blocks(unet, (latent, latent))
    act = unet_activations(unet, latent)
    per_image_half = 2 * (act["skip_values"] + 2 * act["largest_output_values"])  # skips + a block's in and out
    weights_half = 2 * params["unet"]
    record = {
        "method": "shapes of the SD-1.5 configs built on the meta device; bytes are arithmetic, not measured",
        "image_size": IMAGE, "latent_size": latent, "quick": args.quick, "params": params,
        "weights_bytes": {"unet_float32": 4 * params["unet"], "unet_half": weights_half,
                          "vae_float32": 4 * params["vae"], "text_encoder_float32": 4 * params["text_encoder"]},
        "decoder_blocks": [{"block": b.index, "module": b.module_name, "channels": b.channels,
                            "resolution": list(b.resolution)} for b in blocks],
        "unet_activations_per_image_half_bytes": {k.replace("_values", ""): 2 * v for k, v in act.items()},
        "vae_encoder_largest_activation_float32": 4 * vae_encoder_largest(vae),
        "features_per_image_float16": feature_bytes(blocks, ("dift", "paper")),
        "estimate": {
            "batch_size": BATCH,
            "gpu_bytes_unet_half_plus_batch": weights_half + BATCH * per_image_half,
            "formula": "half-precision UNet weights + batch x 2 B x (skip tensors + 2 x largest module output); "
                       "VAE and text encoder off the GPU while the UNet runs; attention scores not materialized "
                       "(fused SDPA)",
        },
    }
    path = _common.write_json(NAME, record, args.out)
    gib = 2**30
    print(f"SD-1.5 at {IMAGE}² (latent {latent}²), parameters: " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    print(f"UNet weights: {4 * params['unet'] / gib:.2f} GiB float32, {weights_half / gib:.2f} GiB half")
    print(f"per image (half): skips {2 * act['skip_values'] / 2**20:.0f} MiB, largest output "
          f"{2 * act['largest_output_values'] / 2**20:.0f} MiB, 64² attention scores if materialized "
          f"{2 * act['attention_scores_values_64'] / 2**20:.0f} MiB")
    for name, f in record["features_per_image_float16"].items():
        print(f"features per image, preset {name!r} (blocks {f['blocks']}, steps {f['steps']}): "
              f"{f['bytes'] / 2**20:.1f} MiB float16")
    print(f"estimate at batch {BATCH}: {record['estimate']['gpu_bytes_unet_half_plus_batch'] / gib:.2f} GiB on the GPU")
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
