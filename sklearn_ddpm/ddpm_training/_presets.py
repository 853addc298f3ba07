"""ADM-like ``UNet2DModel`` configurations for :func:`train_ddpm`.

Every preset follows the layout of the ADM UNet (Dhariwal & Nichol, 2021) used by Baranchuk et al.:
two resnet blocks per resolution level (``layers_per_block=2``, so each decoder up-block has three,
matching ADM's ``output_blocks``), scale-shift time conditioning, resnet up/down-sampling
(ADM's ``resblock_updown``), and self-attention with 64-channel heads at the 16x16 and 8x8 levels.
The widths are much slimmer than ADM's so that they can be trained on a CPU or a single small GPU.

Parameter counts and speed were measured in this repository on a 2-core CPU with
``torch.set_num_threads(1)``, fp32, the preset's default batch size (one optimizer step including
the EMA update); GPU speed was not measured.

========  ==========  =========  ===========  ============  =======================
preset    resolution  params     batch size   s/step (CPU)  widths
========  ==========  =========  ===========  ============  =======================
``64``    64x64       6.9 M      16           ~1.5          64, 128, 128, 192
``128``   128x128     7.8 M      8            ~2.9          32, 64, 128, 128, 192
``256``   256x256     8.0 M      4            ~3.4          32, 32, 64, 128, 128, 192
``tiny``  32x32       0.1 M      4            ~0.03         16, 32 (tests only)
========  ==========  =========  ===========  ============  =======================

The 6.9 M-parameter ``64`` preset stores as 14 MB of fp16 safetensors.
"""

import copy

_COMMON = dict(
    in_channels=3,
    out_channels=3,
    layers_per_block=2,
    resnet_time_scale_shift="scale_shift",
    upsample_type="resnet",
    downsample_type="resnet",
    attention_head_dim=64,
    norm_num_groups=32,
    dropout=0.1,
    flip_sin_to_cos=True,
    freq_shift=0,
)


def _blocks(n_plain, n_attn):
    down = ("DownBlock2D",) * n_plain + ("AttnDownBlock2D",) * n_attn
    up = ("AttnUpBlock2D",) * n_attn + ("UpBlock2D",) * n_plain
    return {"down_block_types": down, "up_block_types": up}


PRESETS = {
    "64": dict(
        image_size=64,
        batch_size=16,
        unet=dict(_COMMON, block_out_channels=(32, 64, 96, 128), **_blocks(2, 2)),
    ),
    "128": dict(
        image_size=128,
        batch_size=8,
        unet=dict(_COMMON, block_out_channels=(32, 64, 128, 128, 192), **_blocks(3, 2)),
    ),
    "256": dict(
        image_size=256,
        batch_size=4,
        unet=dict(_COMMON, block_out_channels=(32, 32, 64, 128, 128, 192), **_blocks(4, 2)),
    ),
    # Only for tests and smoke runs: ~0.1 M parameters, seconds per hundred steps on a CPU.
    "tiny": dict(
        image_size=32,
        batch_size=4,
        unet=dict(
            _COMMON,
            block_out_channels=(16, 16),
            norm_num_groups=8,
            attention_head_dim=16,
            dropout=0.0,
            **_blocks(1, 1),
        ),
    ),
}


def get_preset(name):
    """Return a deep copy of the preset called ``name``.

    Parameters
    ----------
    name : str
        One of ``"64"``, ``"128"``, ``"256"`` or ``"tiny"``.

    Returns
    -------
    preset : dict
        Keys ``image_size``, ``batch_size`` and ``unet`` (keyword arguments of
        ``diffusers.UNet2DModel``, without ``sample_size``).

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training import get_preset
    >>> get_preset("64")["unet"]["block_out_channels"]
    (32, 64, 96, 128)
    """
    key = str(name)
    if key not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return copy.deepcopy(PRESETS[key])
