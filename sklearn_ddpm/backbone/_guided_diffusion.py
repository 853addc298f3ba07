"""Converting OpenAI guided-diffusion (ADM) checkpoints into a diffusers ``UNet2DModel``.

The paper extracts features from the ADM UNets of Dhariwal & Nichol (2021), distributed as plain
PyTorch state dicts (``lsun_horse.pt``, ``ffhq.pt``, ...). Their weights map one to one onto a
diffusers ``UNet2DModel`` configured with scale-shift time conditioning, resnet up/down-sampling,
GroupNorm(32, eps=1e-5) everywhere (the middle attention included) and one attention head width;
the mapping below was checked layer by layer against guided-diffusion's own ``UNetModel``
(``tests/backbone/test_guided_diffusion.py``).

Two facts are invisible in the weights and must be right for the numbers to be right:

- the number of attention heads (the paper's checkpoints use 64-channel heads, the default here);
- the order of the rows of the attention's fused ``qkv`` projection: guided-diffusion's default
  ``QKVAttentionLegacy`` splits heads first (rows ``[head][q|k|v][channel]``), the
  ``use_new_attention_order`` variant splits q/k/v first (rows ``[q|k|v][head][channel]``).
"""

from pathlib import Path

import torch
from diffusers import UNet2DModel

from ._backbone import Backbone
from ._schedule import noise_scheduler

# Keys every guided-diffusion UNetModel state dict has, whatever its configuration.
_REQUIRED_KEYS = (
    "time_embed.0.weight",
    "time_embed.2.weight",
    "input_blocks.0.0.weight",
    "middle_block.0.in_layers.2.weight",
    "middle_block.1.qkv.weight",
    "out.0.weight",
    "out.2.weight",
)

# guided-diffusion's create_model defaults (``channel_mult=""``), used to guess the training
# resolution of a checkpoint without attention below the middle block.
_DEFAULT_CHANNEL_MULT = {
    (0.5, 1, 1, 2, 2, 4, 4): 512,
    (1, 1, 2, 2, 4, 4): 256,
    (1, 1, 2, 3, 4): 128,
    (1, 2, 3, 4): 64,
}

# The paper's (and all released ADM checkpoints') attention flags.
_DEFAULT_ATTENTION_RESOLUTIONS = (32, 16, 8)
_DEFAULT_HEAD_CHANNELS = 64

# Flags of guided-diffusion's scripts that do not change the network's numbers, accepted so that
# a whole ``MODEL_FLAGS`` dict can be passed through.
_IGNORED_FLAGS = frozenset(
    {"dropout", "use_checkpoint", "use_fp16", "timestep_respacing", "use_kl", "predict_xstart",
     "rescale_timesteps", "rescale_learned_sigmas"}
)
# Flags read from the weights; a value passed by the user is checked against them.
_CHECKED_FLAGS = frozenset(
    {"num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "class_cond", "use_scale_shift_norm",
     "resblock_updown"}
)


def load_guided_diffusion(path, scheduler=None, **overrides):
    """Load a guided-diffusion checkpoint file (``.pt``) as a :class:`Backbone`.

    Parameters
    ----------
    path : str or path-like
        A ``torch.save``-d state dict of guided-diffusion's ``UNetModel``, e.g. the paper's
        ``lsun_horse.pt`` or ``ffhq.pt``.
    scheduler : diffusers scheduler, default=None
        The noise schedule; by default built from ``noise_schedule``/``diffusion_steps`` when
        given, else the paper's linear 1000-step schedule.
    **overrides
        guided-diffusion model flags, see :func:`convert_guided_diffusion`.

    Returns
    -------
    Backbone

    Examples
    --------
    >>> from sklearn_ddpm.backbone import load_guided_diffusion
    >>> backbone = load_guided_diffusion("lsun_horse.pt")  # doctest: +SKIP
    >>> backbone.image_size  # doctest: +SKIP
    (256, 256)
    """
    return convert_guided_diffusion(path, scheduler=scheduler, **overrides)


def convert_guided_diffusion(state_dict_or_path, *, image_size=None, num_heads=None, num_head_channels=None,
                             attention_resolutions=None, use_new_attention_order=False, scheduler=None,
                             source=None, **flags):
    """Convert a guided-diffusion ``UNetModel`` state dict into a diffusers-backed :class:`Backbone`.

    The architecture (base width, ``channel_mult``, ``num_res_blocks``, attention levels,
    ``learn_sigma``, ``use_scale_shift_norm``, ``resblock_updown``) is read from the weights.
    What the weights do not show is taken from the arguments, with the defaults of the paper's
    checkpoints.

    Parameters
    ----------
    state_dict_or_path : dict or str or path-like
        The state dict, or a file holding it (loaded with ``weights_only=True`` onto the CPU).
    image_size : int, default=None
        The training resolution, stored as the UNet's ``sample_size``. Inferred from the attention
        levels and ``attention_resolutions`` (or from a default ``channel_mult``) when None.
    num_heads : int, default=None
        Attention heads per layer, guided-diffusion's ``num_heads`` flag; used when
        ``num_head_channels`` is None or -1.
    num_head_channels : int, default=None
        Channels per attention head (``num_head_channels`` flag). When neither this nor
        ``num_heads`` is given, 64 (the paper's checkpoints).
    attention_resolutions : str or sequence of int, default=None
        The ``attention_resolutions`` flag (``"32,16,8"``), used to infer and check ``image_size``;
        ``(32, 16, 8)`` when None.
    use_new_attention_order : bool, default=False
        guided-diffusion's flag of that name; the released checkpoints use the legacy order.
    scheduler : diffusers scheduler, default=None
        The noise schedule; by default from ``noise_schedule``/``diffusion_steps`` if given, else
        the paper's linear 1000-step schedule.
    source : str, default=None
        Recorded as ``Backbone.source``; the file name by default.
    **flags
        Other guided-diffusion model and diffusion flags (``num_channels``, ``learn_sigma``,
        ``noise_schedule``, ``use_fp16``, ...), so that a whole ``MODEL_FLAGS`` dict can be passed.
        Flags that the weights determine are checked against them; flags without effect on the
        network (``dropout``, ``use_fp16``, ...) are ignored.

    Returns
    -------
    Backbone
        Float32, in eval mode, on the CPU.

    Raises
    ------
    ValueError
        If the input is not a guided-diffusion ``UNetModel`` state dict, contradicts a flag or
        ``image_size``, or has a configuration a diffusers ``UNet2DModel`` cannot reproduce
        exactly (class conditioning, ``channel_mult[0] != 1``, head widths differing between
        levels).

    Examples
    --------
    >>> from sklearn_ddpm.backbone import convert_guided_diffusion
    >>> backbone = convert_guided_diffusion("ffhq.pt", image_size=256)  # doctest: +SKIP
    """
    if isinstance(state_dict_or_path, (str, Path)):
        state_dict = _read_state_dict(Path(state_dict_or_path))
        source = source if source is not None else str(state_dict_or_path)
    else:
        state_dict = _unwrap(state_dict_or_path, "the object passed")
    diffusion_flags = _split_flags(flags)
    if num_head_channels == -1:
        num_head_channels = None
    layout = _infer_layout(state_dict)
    _check_flags(layout, flags)
    image_size = _resolve_image_size(layout, image_size, attention_resolutions)
    head_dim = _resolve_head_dim(layout, num_heads, num_head_channels, diffusion_flags.get("num_heads_upsample"))
    unet = UNet2DModel(**_unet_config(layout, image_size, head_dim))
    converted = _convert_weights(state_dict, layout, new_order=use_new_attention_order, head_dim=head_dim)
    _load_exactly(unet, converted)
    if scheduler is None:
        scheduler = _scheduler_from_flags(diffusion_flags)
    return Backbone(unet.eval(), scheduler, source=source if source is not None else "guided-diffusion")


# ---------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------


def _read_state_dict(path):
    if not path.is_file():
        raise FileNotFoundError(f"guided-diffusion checkpoint {str(path)!r} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file can make the unpickler raise anything
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a state dict that can be loaded safely: torch.load(weights_only=True) failed "
            f"({first_line}). Expected a guided-diffusion checkpoint such as lsun_horse.pt."
        ) from exc
    return _unwrap(obj, str(path))


def _unwrap(obj, what):
    # Training wrappers nest the weights ({"state_dict": ...}) or prefix them (DDP's "module.").
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "ema"):
            if key in obj and isinstance(obj[key], dict) and "time_embed.0.weight" not in obj:
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{what} is not a state dict (a dict of tensors); got {type(obj).__name__}. "
            "Expected a guided-diffusion UNetModel state dict such as lsun_horse.pt."
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in obj.items()}


# ---------------------------------------------------------------------------------------------
# Reading the architecture from the weights
# ---------------------------------------------------------------------------------------------


class _Layout:
    """The architecture of a guided-diffusion UNetModel as its weights show it."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def _infer_layout(sd):
    missing = [k for k in _REQUIRED_KEYS if k not in sd]
    if missing:
        hint = ""
        if any(k.startswith(("down_blocks.", "conv_in.")) for k in sd):
            hint = " It looks like a diffusers UNet2DModel: save it with save_pretrained and pass the folder."
        raise ValueError(
            "not a guided-diffusion UNetModel state dict: missing " + ", ".join(missing)
            + f" (it has {len(sd)} tensors, e.g. {', '.join(sorted(sd)[:3])}).{hint}"
        )
    if "label_emb.weight" in sd:
        raise ValueError(
            "class-conditional guided-diffusion checkpoints (label_emb) are not supported: features are "
            "extracted unconditionally. Use an unconditional model such as the LSUN or FFHQ ones."
        )
    model_channels = sd["time_embed.0.weight"].shape[1]
    time_embed_dim = sd["time_embed.0.weight"].shape[0]
    in_channels = sd["input_blocks.0.0.weight"].shape[1]
    first_width = sd["input_blocks.0.0.weight"].shape[0]
    out_channels = sd["out.2.weight"].shape[0]
    n_input = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("input_blocks."))
    n_output = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("output_blocks."))
    if n_input != n_output:
        raise ValueError(f"not a guided-diffusion UNetModel: {n_input} input blocks but {n_output} output blocks.")

    # The last output block of every level but the shallowest holds an upsampler, as its last layer.
    def upsampler(k):
        layers = sorted({int(key.split(".")[2]) for key in sd if key.startswith(f"output_blocks.{k}.")})
        last = layers[-1]
        if last == 0:
            return None
        if f"output_blocks.{k}.{last}.in_layers.0.weight" in sd:
            return "resnet"
        if f"output_blocks.{k}.{last}.conv.weight" in sd:
            return "conv"
        return None

    upsamplers = [k for k in range(n_output) if upsampler(k)]
    per_level = upsamplers[0] + 1 if upsamplers else n_output
    num_res_blocks = per_level - 1
    n_levels = n_output // per_level
    if num_res_blocks < 1 or n_output % per_level or upsamplers != [
        i * per_level + num_res_blocks for i in range(n_levels - 1)
    ]:
        raise ValueError("not a guided-diffusion UNetModel: its output blocks are not grouped into levels.")
    kinds = {upsampler(k) for k in upsamplers}
    if len(kinds) > 1:
        raise ValueError("mixed resnet and convolution upsamplers; not a guided-diffusion UNetModel.")
    resblock_updown = kinds == {"resnet"}

    widths, attention = [], []
    for level in range(n_levels):
        first = 1 + level * per_level
        widths.append(_resblock_width(sd, f"input_blocks.{first}.0"))
        attention.append(f"input_blocks.{first}.1.qkv.weight" in sd)
        for j in range(num_res_blocks):
            if (f"input_blocks.{first + j}.1.qkv.weight" in sd) != attention[-1]:
                raise ValueError(f"level {level} has attention after some resnets only; diffusers cannot represent it.")
        if level < n_levels - 1:
            down = f"input_blocks.{first + num_res_blocks}.0"
            has_resnet = f"{down}.in_layers.0.weight" in sd
            if has_resnet != resblock_updown or (not has_resnet and f"{down}.op.weight" not in sd):
                raise ValueError(
                    f"downsampler of level {level} ({down}) does not match the upsamplers "
                    f"(resblock_updown={resblock_updown})."
                )
    for i in range(n_levels):
        level = n_levels - 1 - i
        for j in range(per_level):
            has = f"output_blocks.{i * per_level + j}.1.qkv.weight" in sd
            if has != attention[level]:
                raise ValueError(
                    f"output block {i * per_level + j} and input blocks of level {level} disagree on attention; "
                    "diffusers cannot represent it."
                )
    use_scale_shift_norm = sd["input_blocks.1.0.emb_layers.1.weight"].shape[0] == 2 * widths[0]
    return _Layout(
        model_channels=model_channels,
        time_embed_dim=time_embed_dim,
        first_width=first_width,
        in_channels=in_channels,
        out_channels=out_channels,
        num_res_blocks=num_res_blocks,
        widths=tuple(widths),
        attention=tuple(attention),
        resblock_updown=resblock_updown,
        use_scale_shift_norm=use_scale_shift_norm,
        norm_groups=32,
    )


def _resblock_width(sd, prefix):
    key = f"{prefix}.out_layers.3.weight"
    if key not in sd:
        raise ValueError(f"not a guided-diffusion UNetModel: missing {key}.")
    return sd[key].shape[0]


def _channel_mult(layout):
    return tuple(w // layout.model_channels if w % layout.model_channels == 0 else w / layout.model_channels
                 for w in layout.widths)


def _check_flags(layout, flags):
    if layout.first_width != layout.model_channels:
        raise ValueError(
            f"channel_mult[0] = {layout.first_width / layout.model_channels:g} (e.g. the 512x512 ADM) is not "
            "supported: a diffusers UNet2DModel sizes its timestep embedding by the first level's width."
        )
    if layout.time_embed_dim != 4 * layout.model_channels:
        raise ValueError(f"time embedding width {layout.time_embed_dim} is not 4 x num_channels; not an ADM UNet.")
    actual = {
        "num_channels": layout.model_channels,
        "num_res_blocks": layout.num_res_blocks,
        "channel_mult": _channel_mult(layout),
        "learn_sigma": layout.out_channels == 2 * layout.in_channels,
        "class_cond": False,
        "use_scale_shift_norm": layout.use_scale_shift_norm,
        "resblock_updown": layout.resblock_updown,
    }
    for name in _CHECKED_FLAGS & flags.keys():
        value = flags[name]
        if name == "channel_mult":
            if value in ("", None):
                continue
            value = tuple(float(m) for m in (value.split(",") if isinstance(value, str) else value))
            expected = tuple(float(m) for m in actual[name])
        else:
            value, expected = (bool(value), actual[name]) if isinstance(actual[name], bool) else (int(value), actual[name])
        if value != expected:
            raise ValueError(f"the checkpoint has {name}={actual[name]!r}, but {name}={flags[name]!r} was passed.")


def _split_flags(flags):
    unknown = set(flags) - _CHECKED_FLAGS - _IGNORED_FLAGS - {"noise_schedule", "diffusion_steps", "num_heads_upsample"}
    if unknown:
        raise TypeError(f"unknown guided-diffusion flag(s): {', '.join(sorted(unknown))}.")
    return {k: v for k, v in flags.items() if k in {"noise_schedule", "diffusion_steps", "num_heads_upsample"}}


def _parse_resolutions(attention_resolutions):
    if attention_resolutions is None:
        return _DEFAULT_ATTENTION_RESOLUTIONS
    if isinstance(attention_resolutions, str):
        return tuple(int(r) for r in attention_resolutions.split(",") if r.strip())
    if isinstance(attention_resolutions, int):
        return (attention_resolutions,)
    return tuple(int(r) for r in attention_resolutions)


def _resolve_image_size(layout, image_size, attention_resolutions):
    resolutions = _parse_resolutions(attention_resolutions)
    factors = [2**level for level, attn in enumerate(layout.attention) if attn]
    divisor = 2 ** (len(layout.widths) - 1)
    inferred = _size_from_attention(factors, resolutions, len(layout.widths))
    if image_size is None:
        if inferred is not None:
            return inferred
        default = _DEFAULT_CHANNEL_MULT.get(tuple(float(m) for m in _channel_mult(layout)))
        if default is None:
            default = _DEFAULT_CHANNEL_MULT.get(_channel_mult(layout))
        if not factors and default is not None:
            return default
        raise ValueError(
            f"cannot tell the training image_size of this checkpoint (channel_mult={_channel_mult(layout)}, "
            f"attention at 1/{', 1/'.join(map(str, factors)) or 'none'} of the input): pass image_size= "
            "(and attention_resolutions= if it was not trained with 32,16,8)."
        )
    image_size = int(image_size)
    if image_size % divisor:
        raise ValueError(
            f"image_size={image_size} is not divisible by {divisor}, the total downsampling of this "
            f"{len(layout.widths)}-level checkpoint."
        )
    expected = _attention_factors(image_size, resolutions, len(layout.widths))
    if attention_resolutions is not None or factors:
        if expected != factors:
            hint = ""
            if inferred is not None:
                hint = f" (with attention_resolutions={','.join(map(str, resolutions))} that means image_size={inferred})"
            raise ValueError(
                f"image_size={image_size} does not match this checkpoint: its attention layers sit at "
                f"1/{', 1/'.join(map(str, factors)) or 'none'} of the input{hint}, but image_size={image_size} "
                f"with attention_resolutions={','.join(map(str, resolutions))} puts them at "
                f"1/{', 1/'.join(map(str, expected)) or 'none'}. Pass the checkpoint's own image_size and "
                "attention_resolutions."
            )
    return image_size


def _size_from_attention(factors, resolutions, n_levels):
    # The one image size whose attention_resolutions put attention exactly where the weights have it.
    if not factors:
        return None
    candidates = {r * f for r in resolutions for f in factors}
    consistent = [s for s in sorted(candidates) if _attention_factors(s, resolutions, n_levels) == factors]
    return consistent[0] if len(consistent) == 1 else None


def _attention_factors(image_size, resolutions, n_levels):
    # guided-diffusion: attention at downsampling rate ds whenever image_size // r == ds.
    rates = {image_size // r for r in resolutions}
    return [2**level for level in range(n_levels) if 2**level in rates]


def _resolve_head_dim(layout, num_heads, num_head_channels, num_heads_upsample):
    widths = [w for w, attn in zip(layout.widths, layout.attention) if attn] + [layout.widths[-1]]
    if num_heads_upsample not in (None, -1) and num_heads_upsample != num_heads:
        raise ValueError("num_heads_upsample different from num_heads is not supported by diffusers' UNet2DModel.")
    if num_head_channels is None and num_heads is None:
        if all(w % _DEFAULT_HEAD_CHANNELS == 0 for w in widths):
            num_head_channels = _DEFAULT_HEAD_CHANNELS
        else:
            raise ValueError(
                f"the attention widths {sorted(set(widths))} are not multiples of 64, the head width of the "
                "paper's checkpoints; the number of heads cannot be read from the weights, so pass "
                "num_head_channels= or num_heads= as the model was trained with."
            )
    if num_head_channels is not None:
        bad = [w for w in widths if w % num_head_channels]
        if bad:
            raise ValueError(f"attention widths {bad} are not divisible by num_head_channels={num_head_channels}.")
        return int(num_head_channels)
    head_dims = {w // num_heads for w in widths}
    if any(w % num_heads for w in widths) or len(head_dims) != 1:
        raise ValueError(
            f"num_heads={num_heads} gives head widths {sorted(w / num_heads for w in set(widths))} at the "
            f"attention widths {sorted(set(widths))}; diffusers' UNet2DModel has a single attention_head_dim, "
            "so this checkpoint cannot be represented exactly."
        )
    return head_dims.pop()


# ---------------------------------------------------------------------------------------------
# The diffusers configuration and the weight mapping
# ---------------------------------------------------------------------------------------------


def _unet_config(layout, image_size, head_dim):
    down, up = [], []
    for attn in layout.attention:
        if attn:
            down.append("AttnDownBlock2D")
            up.insert(0, "AttnUpBlock2D")
        elif layout.resblock_updown:
            # DownBlock2D/UpBlock2D ignore downsample_type/upsample_type and always use convolutions.
            down.append("ResnetDownsampleBlock2D")
            up.insert(0, "ResnetUpsampleBlock2D")
        else:
            down.append("DownBlock2D")
            up.insert(0, "UpBlock2D")
    resample = "resnet" if layout.resblock_updown else "conv"
    return dict(
        sample_size=image_size,
        in_channels=layout.in_channels,
        out_channels=layout.out_channels,
        time_embedding_type="positional",
        flip_sin_to_cos=True,  # guided-diffusion's embedding is [cos, sin]
        freq_shift=0,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        block_out_channels=layout.widths,
        layers_per_block=layout.num_res_blocks,
        mid_block_scale_factor=1,
        downsample_padding=1,
        downsample_type=resample,
        upsample_type=resample,
        act_fn="silu",
        attention_head_dim=head_dim,
        norm_num_groups=layout.norm_groups,
        # Without it the middle attention of a scale-shift UNet2DModel has no GroupNorm at all.
        attn_norm_num_groups=layout.norm_groups,
        norm_eps=1e-5,
        resnet_time_scale_shift="scale_shift" if layout.use_scale_shift_norm else "default",
        add_attention=True,
    )


def _convert_weights(sd, layout, new_order, head_dim):
    out = {}
    used = set()

    def copy(dst, src):
        for suffix in ("weight", "bias"):
            key = f"{src}.{suffix}"
            if key in sd:
                out[f"{dst}.{suffix}"] = sd[key]
                used.add(key)

    def resnet(dst, src):
        copy(f"{dst}.norm1", f"{src}.in_layers.0")
        copy(f"{dst}.conv1", f"{src}.in_layers.2")
        copy(f"{dst}.time_emb_proj", f"{src}.emb_layers.1")
        copy(f"{dst}.norm2", f"{src}.out_layers.0")
        copy(f"{dst}.conv2", f"{src}.out_layers.3")
        copy(f"{dst}.conv_shortcut", f"{src}.skip_connection")

    def attention(dst, src):
        copy(f"{dst}.group_norm", f"{src}.norm")
        weight, bias = sd[f"{src}.qkv.weight"], sd[f"{src}.qkv.bias"]
        channels = weight.shape[1]
        heads = channels // head_dim
        # Legacy rows are [head][q,k,v][channel]; the new order's are [q,k,v][head][channel].
        shape = (3, heads, head_dim) if new_order else (heads, 3, head_dim)
        w = weight.reshape(*shape, channels)
        b = bias.reshape(*shape)
        for i, name in enumerate(("to_q", "to_k", "to_v")):
            wi, bi = (w[i], b[i]) if new_order else (w[:, i], b[:, i])
            out[f"{dst}.{name}.weight"] = wi.reshape(channels, channels).contiguous()
            out[f"{dst}.{name}.bias"] = bi.reshape(channels).contiguous()
        out[f"{dst}.to_out.0.weight"] = sd[f"{src}.proj_out.weight"].reshape(channels, channels)
        out[f"{dst}.to_out.0.bias"] = sd[f"{src}.proj_out.bias"]
        used.update(f"{src}.{k}" for k in ("qkv.weight", "qkv.bias", "proj_out.weight", "proj_out.bias"))

    def resample(dst, src, conv):
        # ADM resamples with a residual block (resblock_updown) or a bare convolution.
        if layout.resblock_updown:
            resnet(dst, src)
        else:
            copy(f"{dst}.conv", f"{src}.{conv}")

    copy("time_embedding.linear_1", "time_embed.0")
    copy("time_embedding.linear_2", "time_embed.2")
    copy("conv_in", "input_blocks.0.0")
    n_levels = len(layout.widths)
    per_level = layout.num_res_blocks + 1
    for level in range(n_levels):
        for j in range(layout.num_res_blocks):
            src = f"input_blocks.{1 + level * per_level + j}"
            resnet(f"down_blocks.{level}.resnets.{j}", f"{src}.0")
            if layout.attention[level]:
                attention(f"down_blocks.{level}.attentions.{j}", f"{src}.1")
        if level < n_levels - 1:
            src = f"input_blocks.{1 + level * per_level + layout.num_res_blocks}.0"
            resample(f"down_blocks.{level}.downsamplers.0", src, "op")
    resnet("mid_block.resnets.0", "middle_block.0")
    attention("mid_block.attentions.0", "middle_block.1")
    resnet("mid_block.resnets.1", "middle_block.2")
    for i in range(n_levels):
        has_attention = layout.attention[n_levels - 1 - i]
        for j in range(per_level):
            src = f"output_blocks.{i * per_level + j}"
            resnet(f"up_blocks.{i}.resnets.{j}", f"{src}.0")
            if has_attention:
                attention(f"up_blocks.{i}.attentions.{j}", f"{src}.1")
            if j == per_level - 1 and i < n_levels - 1:
                resample(f"up_blocks.{i}.upsamplers.0", f"{src}.{2 if has_attention else 1}", "conv")
    copy("conv_norm_out", "out.0")
    copy("conv_out", "out.2")
    unused = sorted(set(sd) - used)
    if unused:
        raise ValueError(
            f"{len(unused)} tensors of the checkpoint have no place in the converted UNet (e.g. "
            f"{', '.join(unused[:4])}); it is not a plain guided-diffusion UNetModel."
        )
    return out


def _load_exactly(unet, converted):
    expected = unet.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = [k for k in sorted(set(expected) & set(converted)) if expected[k].shape != converted[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            "the checkpoint does not fit the inferred diffusers configuration: "
            f"missing {missing[:4]}, unexpected {unexpected[:4]}, shape mismatch {wrong[:4]}."
        )
    unet.load_state_dict(converted, strict=True)


def _scheduler_from_flags(flags):
    return noise_scheduler(flags.get("noise_schedule", "linear"), int(flags.get("diffusion_steps", 1000)))
