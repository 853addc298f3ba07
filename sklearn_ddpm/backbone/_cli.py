"""``sklearn-ddpm convert`` and ``sklearn-ddpm blocks``."""

import argparse
from pathlib import Path

_CONVERT_EXAMPLE = """\
examples:
  # the paper's LSUN-horse ADM (guided-diffusion flags are read from the weights)
  sklearn-ddpm convert lsun_horse.pt models/lsun_horse
  # a checkpoint trained with other attention flags
  sklearn-ddpm convert my_adm.pt models/my_adm --image-size 128 --num-heads 4 --attention-resolutions 16,8

The folder loads with DDPMFeatureTransformer(model="models/lsun_horse") or
sklearn_ddpm.backbone.load_backbone("models/lsun_horse").
"""

_BLOCKS_EXAMPLE = """\
examples:
  sklearn-ddpm blocks --model lsun_horse.pt
  sklearn-ddpm blocks --model models/lsun_horse --image-size 128
  sklearn-ddpm blocks                      # the bundled horse DDPM
  sklearn-ddpm blocks --model models/stable-diffusion-v1-5 --image-size 768

The "block" numbers are the ones DDPMFeatureTransformer(blocks=...) takes. For a Stable-Diffusion-style
(latent) model --image-size is in image pixels and the resolutions are latent ones (image / 8).
"""


def register(subparsers):
    """Add the ``convert`` and ``blocks`` sub-commands to the ``sklearn-ddpm`` parser."""
    convert = subparsers.add_parser(
        "convert",
        help="convert a guided-diffusion checkpoint (.pt) into a diffusers folder",
        description="Convert an OpenAI guided-diffusion (ADM) UNet checkpoint, such as the paper's "
                    "lsun_horse.pt or ffhq.pt, into a diffusers DDPMPipeline-style folder (unet/, scheduler/). "
                    "The architecture is read from the weights; the options give what the weights cannot show.",
        epilog=_CONVERT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("checkpoint", type=Path, help="guided-diffusion state dict (.pt)")
    convert.add_argument("out_dir", type=Path, help="folder to write (must not exist or be empty)")
    convert.add_argument("--image-size", type=int, default=None,
                         help="training resolution (default: inferred from the attention levels)")
    _add_guided_diffusion_options(convert)
    convert.add_argument("--noise-schedule", choices=("linear", "cosine"), default="linear",
                         help="guided-diffusion's noise_schedule flag (default: linear, the paper's)")
    convert.add_argument("--diffusion-steps", type=int, default=1000,
                         help="guided-diffusion's diffusion_steps flag (default: 1000)")
    convert.set_defaults(func=_convert)

    blocks = subparsers.add_parser(
        "blocks",
        help="list a backbone's decoder blocks with their channels and resolutions",
        description="Print the decoder blocks of a diffusion UNet in the paper's numbering, with the "
                    "channels and resolution of each block's output.",
        epilog=_BLOCKS_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    blocks.add_argument("--model", default=None,
                        help="a diffusers folder (DDPM or Stable Diffusion pipeline), a guided-diffusion .pt or "
                             "a Hugging Face hub id (default: the bundled horse DDPM)")
    blocks.add_argument("--image-size", type=image_size_argument, default=None,
                        help="input resolution, N or HxW (default: the model's own)")
    _add_guided_diffusion_options(blocks, suffix=" (for a .pt model)")
    blocks.set_defaults(func=_blocks)


def _add_guided_diffusion_options(parser, suffix=""):
    group = parser.add_argument_group("guided-diffusion flags" + suffix)
    group.add_argument("--num-head-channels", type=int, default=None,
                       help="channels per attention head (default: 64, the paper's checkpoints)")
    group.add_argument("--num-heads", type=int, default=None,
                       help="attention heads per layer, for models trained without --num_head_channels")
    group.add_argument("--attention-resolutions", default=None,
                       help="comma-separated, as in guided-diffusion (default: 32,16,8)")
    group.add_argument("--use-new-attention-order", action="store_true",
                       help="the model was trained with use_new_attention_order=True")


def image_size_argument(text):
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _guided_overrides(args):
    return dict(num_head_channels=args.num_head_channels, num_heads=args.num_heads,
                attention_resolutions=args.attention_resolutions,
                use_new_attention_order=args.use_new_attention_order)


def _convert(args):
    from ..utils._atomic import ensure_directory
    from ._guided_diffusion import load_guided_diffusion

    out_dir = args.out_dir
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir} already exists and is not an empty folder; choose another OUT_DIR.")
    ensure_directory(out_dir, "OUT_DIR")  # before the conversion, not after it
    backbone = load_guided_diffusion(args.checkpoint, image_size=args.image_size, noise_schedule=args.noise_schedule,
                                     diffusion_steps=args.diffusion_steps, **_guided_overrides(args))
    backbone.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in backbone.unet.parameters())
    height, width = backbone.image_size
    print(f"converted {args.checkpoint} -> {out_dir}: {n_params / 1e6:.1f} M parameters, {height}x{width}, "
          f"{backbone.n_decoder_blocks} decoder blocks")


def _blocks(args):
    from ._blocks import format_decoder_blocks, list_decoder_blocks
    from ._guided_diffusion import load_guided_diffusion
    from ._loading import load_backbone

    try:
        if args.model is not None and Path(args.model).is_file():
            backbone = load_guided_diffusion(args.model, **_guided_overrides(args))
        else:
            backbone = load_backbone(args.model)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError, PermissionError)):
            raise
        # Hub failures are OSErrors; the CLI reports them as errors instead of tracebacks.
        raise RuntimeError(str(exc)) from exc
    print(f"# {backbone!r}")
    print(format_decoder_blocks(list_decoder_blocks(backbone, image_size=args.image_size)))
