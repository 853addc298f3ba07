"""Small ADM-shaped ``UNet2DModel`` configurations (random init) for tests and examples."""

from diffusers import UNet2DModel


def adm_unet_config(
    image_size=256,
    base_channels=256,
    channel_mult=None,
    attention_resolutions=(32, 16, 8),
    layers_per_block=2,
    head_dim=64,
    norm_num_groups=32,
    out_channels=6,
):
    """``UNet2DModel`` keyword arguments laid out like guided-diffusion's ADM UNet.

    With the defaults this is the 256² ADM of the paper (552.8 M parameters, 18 decoder blocks);
    a smaller ``base_channels`` keeps the block layout and resolutions at a fraction of the cost.
    """
    if channel_mult is None:
        channel_mult = {
            512: (0.5, 1, 1, 2, 2, 4, 4),
            256: (1, 1, 2, 2, 4, 4),
            128: (1, 1, 2, 3, 4),
            64: (1, 2, 3, 4),
            32: (1, 2, 2, 2),
        }[image_size]
    down, up = [], []
    for level in range(len(channel_mult)):
        resolution = image_size // 2**level
        attn = resolution in attention_resolutions
        # DownBlock2D/UpBlock2D ignore downsample_type/upsample_type (always convolutions); ADM's
        # resblock_updown levels without attention are the Resnet*sampleBlock2D types.
        down.append("AttnDownBlock2D" if attn else "ResnetDownsampleBlock2D")
        up.insert(0, "AttnUpBlock2D" if attn else "ResnetUpsampleBlock2D")
    return dict(
        sample_size=image_size,
        in_channels=3,
        out_channels=out_channels,
        block_out_channels=tuple(int(base_channels * m) for m in channel_mult),
        layers_per_block=layers_per_block,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        attention_head_dim=head_dim,
        norm_num_groups=norm_num_groups,
        # Without it a scale-shift UNet2DModel's middle attention has no GroupNorm (ADM's has).
        attn_norm_num_groups=norm_num_groups,
        norm_eps=1e-5,
        resnet_time_scale_shift="scale_shift",
        upsample_type="resnet",
        downsample_type="resnet",
        add_attention=True,
    )


def tiny_unet(image_size=32, base_channels=16, seed=0, **kwargs):
    """A random-init ADM-shaped UNet of a few hundred thousand parameters, for tests and docs.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> tiny_unet().config.sample_size
    32
    """
    import torch

    config = adm_unet_config(
        image_size=image_size,
        base_channels=base_channels,
        attention_resolutions=kwargs.pop("attention_resolutions", (image_size // 4,)),
        head_dim=kwargs.pop("head_dim", 8),
        norm_num_groups=kwargs.pop("norm_num_groups", 8),
        **kwargs,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return UNet2DModel(**config).eval()
