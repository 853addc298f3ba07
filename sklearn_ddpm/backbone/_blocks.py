"""Decoder-block numbering of a ``UNet2DModel``, equal to the paper's.

The reference implementation (guided-diffusion's ADM UNet) keeps its decoder as a flat list of
``output_blocks``: one entry per residual block of each resolution level, with the level's attention
after it, and the *last* entry of a level also holding the level's upsampler. The paper numbers those
entries 0, 1, 2, ... from the deepest level to the shallowest (ADM-256: 18 blocks; the defaults
5, 6, 7, 8, 12 give 1024@32², 512@32², 512@32², 512@64², 256@128²).

A diffusers UNet groups the same layers by level (``up_blocks[i].resnets[j]``,
``.attentions[j]``, ``.upsamplers[0]``); block ``k`` is resnet ``j`` of up-block ``i`` with
``k = sum(len(up_blocks[:i].resnets)) + j``, and its output is taken after the attention ``j`` and,
for the last resnet of an up-block, after the upsampler. Every layout follows that rule:

- ``UNet2DModel`` (DDPM, ADM conversions): ``UpBlock2D``/``AttnUpBlock2D``/``ResnetUpsampleBlock2D``
  with ``upsamplers``;
- NCSN++-style ``SkipUpBlock2D``/``AttnSkipUpBlock2D``: the main path is upsampled by ``resnet_up``
  (``upsampler`` is the FIR filter of the separate skip-to-image path, not read); the single
  attention of ``AttnSkipUpBlock2D`` runs after its last resnet, so it belongs to the last block;
- Stable Diffusion's ``UNet2DConditionModel`` (``UpBlock2D`` then ``CrossAttnUpBlock2D``, whose
  ``attentions[j]`` is the cross-attention transformer after resnet ``j``): SD-1.x/2.x have 4
  up-blocks of 3 resnets, blocks 0-11; for 512² images (64² latents) blocks 0-1 are 1280@8²,
  2 1280@16² (after up-block 0's upsampler), 3-4 1280@16², 5 1280@32², 6-7 640@32², 8 640@64²,
  9-11 320@64² (docs/latent_backbones.md).
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DecoderBlock:
    """One decoder block: its paper index, where it lives and what it outputs."""

    index: int
    up_block: int
    layer: int
    module_name: str
    channels: int
    resolution: tuple
    has_attention: bool
    has_upsampler: bool


def decoder_block_modules(unet):
    """Return the modules whose outputs are the decoder blocks, in the paper's order.

    Parameters
    ----------
    unet : diffusers.UNet2DModel or diffusers.UNet2DConditionModel
        The noise-prediction network.

    Returns
    -------
    list of (str, torch.nn.Module)
        ``(qualified module name, module)`` per decoder block; a forward hook on the module sees
        the block's output.
    """
    return [(name, module) for name, module, *_ in _block_layout(unet)]


def _block_layout(unet):
    """``(module name, module, up-block, layer, has_attention, has_upsampler)`` per decoder block.

    The one place that knows where each up-block layout's block outputs are (module docstring).
    """
    layout = []
    for i, up_block in enumerate(unet.up_blocks):
        n_layers = len(up_block.resnets)
        attentions = getattr(up_block, "attentions", None) or []
        # One attention per resnet, or (AttnSkipUpBlock2D) a single one after the last resnet.
        per_layer = len(attentions) == n_layers
        upsamplers = getattr(up_block, "upsamplers", None)
        if upsamplers:
            upsampler = (f"up_blocks.{i}.upsamplers.{len(upsamplers) - 1}", upsamplers[-1])
        elif getattr(up_block, "resnet_up", None) is not None:
            upsampler = (f"up_blocks.{i}.resnet_up", up_block.resnet_up)
        else:
            upsampler = None
        for j in range(n_layers):
            last = j == n_layers - 1
            has_attention = per_layer or (last and bool(attentions))
            if last and upsampler is not None:
                name, module = upsampler
            elif has_attention:
                a = j if per_layer else len(attentions) - 1
                name, module = f"up_blocks.{i}.attentions.{a}", attentions[a]
            else:
                name, module = f"up_blocks.{i}.resnets.{j}", up_block.resnets[j]
            layout.append((name, module, i, j, has_attention, last and upsampler is not None))
    return layout


def list_decoder_blocks(unet, image_size=None):
    """List the decoder blocks of a UNet with their channels and output resolution.

    The numbers are the ones ``DDPMFeatureTransformer(blocks=...)`` takes. Resolutions are found by
    running the model once on a zero input of ``image_size`` (default: the model's native size),
    so they are exact for any architecture.

    Parameters
    ----------
    unet : diffusers.UNet2DModel, diffusers.UNet2DConditionModel or Backbone
        The model. For a :class:`~sklearn_ddpm.backbone.LatentBackbone` ``image_size`` is in
        image pixels and the resolutions are the latent ones (image / 8 for Stable Diffusion);
        for a bare ``UNet2DConditionModel`` both are latent sizes.
    image_size : int or (int, int), default=None
        Input resolution; defaults to the model's native one.

    Returns
    -------
    list of DecoderBlock

    Examples
    --------
    >>> from sklearn_ddpm.backbone import list_decoder_blocks, tiny_unet
    >>> blocks = list_decoder_blocks(tiny_unet())
    >>> blocks[0].index, blocks[0].channels
    (0, 32)
    """
    if hasattr(unet, "decoder_blocks"):  # a Backbone knows its input size and conditioning
        return unet.decoder_blocks(image_size)
    return trace_decoder_blocks(unet, image_size if image_size is not None else unet.config.sample_size)


def trace_decoder_blocks(unet, input_size, **unet_kwargs):
    """:func:`list_decoder_blocks` of a bare UNet run once on zeros of ``input_size`` (its own input space).

    ``unet_kwargs`` are passed to the forward call; a ``UNet2DConditionModel`` without them gets a
    one-token zero text embedding, which does not change any shape.
    """
    height, width = _as_hw(input_size)
    layout = _block_layout(unet)
    shapes = {}
    handles = [module.register_forward_hook(_shape_recorder(shapes, k)) for k, (_, module, *_) in enumerate(layout)]
    param = next(unet.parameters())
    cross_attention_dim = getattr(unet.config, "cross_attention_dim", None)
    if cross_attention_dim is not None and "encoder_hidden_states" not in unet_kwargs:
        unet_kwargs["encoder_hidden_states"] = torch.zeros(1, 1, cross_attention_dim, device=param.device,
                                                           dtype=param.dtype)
    try:
        with torch.inference_mode():
            x = torch.zeros(1, unet.config.in_channels, height, width, device=param.device, dtype=param.dtype)
            unet(x, torch.tensor([0], device=param.device), **unet_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return [
        DecoderBlock(index=k, up_block=i, layer=j, module_name=name, channels=shapes[k][1],
                     resolution=tuple(shapes[k][2:]), has_attention=has_attention, has_upsampler=has_upsampler)
        for k, (name, _, i, j, has_attention, has_upsampler) in enumerate(layout)
    ]


def format_decoder_blocks(blocks):
    """Return a printable table of :func:`list_decoder_blocks`'s result."""
    lines = [f"{'block':>5}  {'channels':>8}  {'resolution':>10}  module"]
    for b in blocks:
        res = "x".join(str(r) for r in b.resolution)
        extra = " (+attention)" if b.has_attention else ""
        extra += " (+upsampler)" if b.has_upsampler else ""
        lines.append(f"{b.index:>5}  {b.channels:>8}  {res:>10}  {b.module_name}{extra}")
    return "\n".join(lines)


def _shape_recorder(shapes, k):
    def hook(module, args, output):
        shapes[k] = tuple(_first_tensor(output).shape)

    return hook


def _first_tensor(output):
    # diffusers blocks return a tensor; some attention processors return a tuple.
    return output[0] if isinstance(output, (tuple, list)) else output


def _as_hw(size):
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)
