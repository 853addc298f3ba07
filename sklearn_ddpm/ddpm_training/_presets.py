"""ADM-like ``UNet2DModel`` configurations for :func:`train_ddpm`.

Every preset follows the layout of the ADM UNet (Dhariwal & Nichol, 2021) used by Baranchuk et al.:
two resnet blocks per resolution level (``layers_per_block=2``, so each decoder up-block has three,
matching ADM's ``output_blocks``), scale-shift time conditioning, resnet up/down-sampling blocks
(ADM's ``resblock_updown``), GroupNorm before every attention (the middle one included), and
self-attention (32-channel heads) at the 16x16 and 8x8 levels. The widths are far slimmer than ADM's
(base 32, like ADM-64's channel multipliers 1, 2, 3, 4) so that a preset trains on a CPU and its fp16
weights stay under 15 MB.

Parameter counts are exact. Speed: seconds per optimizer step (forward, backward, AdamW, EMA update,
data sampling and augmentation) in fp32 at the preset's default batch size with 1 torch thread on this
project's 2-core Xeon development machine while other jobs loaded it (load average 6.7), as recorded
by ``benchmarks/presets.py`` in ``benchmarks/results/presets.json``: one run of 10 / 5 / 4 steps from
scratch per preset, the first step's one-off costs included (so slightly more than a long run's
s/step). The ``tiny`` and ``64-wide`` presets' speed and GPU speed were not measured by that script.

===========  ==========  =======  =====  ======  ========================
preset       resolution  params   batch  s/step  widths
===========  ==========  =======  =====  ======  ========================
``64``       64x64       6.30 M   8      4.52    32, 64, 96, 128
``64-wide``  64x64       25.12 M  8      --      64, 128, 192, 256
``128``      128x128     7.07 M   8      9.27    32, 64, 64, 96, 128
``256``      256x256     7.29 M   4      18.3    32, 32, 64, 64, 96, 128
``tiny``     32x32       0.13 M   4      --      16, 16 (tests only)
===========  ==========  =======  =====  ======  ========================

fp16 safetensors sizes: 12.6 MB (``64``), 14.1 MB (``128``), 14.6 MB (``256``).
"""

import copy

_COMMON = dict(
    in_channels=3,
    out_channels=3,
    layers_per_block=2,
    resnet_time_scale_shift="scale_shift",
    upsample_type="resnet",
    downsample_type="resnet",
    attention_head_dim=32,
    norm_num_groups=32,
    # Without it the middle block's attention of a scale-shift UNet2DModel has no GroupNorm (ADM's has).
    attn_norm_num_groups=32,
    dropout=0.1,
    flip_sin_to_cos=True,
    freq_shift=0,
)


def _blocks(n_plain, n_attn):
    # DownBlock2D/UpBlock2D ignore downsample_type/upsample_type and resample with plain
    # convolutions; the Resnet*sampleBlock2D types resample with resnet blocks like ADM.
    down = ("ResnetDownsampleBlock2D",) * n_plain + ("AttnDownBlock2D",) * n_attn
    up = ("AttnUpBlock2D",) * n_attn + ("ResnetUpsampleBlock2D",) * n_plain
    return {"down_block_types": down, "up_block_types": up}


PRESETS = {
    "64": dict(
        image_size=64,
        batch_size=8,
        unet=dict(_COMMON, block_out_channels=(32, 64, 96, 128), **_blocks(2, 2)),
    ),
    # The 64 preset at twice the width (issue 29: a wider backbone at equal CPU hours); four times
    # the parameters and several times the compute per step, so far fewer steps in the same time.
    "64-wide": dict(
        image_size=64,
        batch_size=8,
        unet=dict(_COMMON, block_out_channels=(64, 128, 192, 256), **_blocks(2, 2)),
    ),
    "128": dict(
        image_size=128,
        batch_size=8,
        unet=dict(_COMMON, block_out_channels=(32, 64, 64, 96, 128), **_blocks(3, 2)),
    ),
    "256": dict(
        image_size=256,
        batch_size=4,
        unet=dict(_COMMON, block_out_channels=(32, 32, 64, 64, 96, 128), **_blocks(4, 2)),
    ),
    # Only for tests and smoke runs: 0.13 M parameters, a few milliseconds per step at 16x16.
    "tiny": dict(
        image_size=32,
        batch_size=4,
        unet=dict(
            _COMMON,
            block_out_channels=(16, 16),
            norm_num_groups=8,
            attn_norm_num_groups=8,
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
        One of ``"64"``, ``"64-wide"``, ``"128"``, ``"256"`` or ``"tiny"``.

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
