"""Decoder-block numbering of a ``UNet2DModel``, equal to the paper's.

The reference implementation (guided-diffusion's ADM UNet) keeps its decoder as a flat list of
``output_blocks``: one entry per residual block of each resolution level, with the level's attention
after it, and the *last* entry of a level also holding the level's upsampler. The paper numbers those
entries 0, 1, 2, ... from the deepest level to the shallowest (ADM-256: 18 blocks; the defaults
5, 6, 7, 8, 12 give 1024@32², 512@32², 512@32², 512@64², 256@128²).

A diffusers ``UNet2DModel`` groups the same layers by level (``up_blocks[i].resnets[j]``,
``.attentions[j]``, ``.upsamplers[0]``); block ``k`` is resnet ``j`` of up-block ``i`` with
``k = sum(len(up_blocks[:i].resnets)) + j``, and its output is taken after the attention ``j`` and,
for the last resnet of an up-block, after the upsampler.
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
    unet : diffusers.UNet2DModel
        The noise-prediction network.

    Returns
    -------
    list of (str, torch.nn.Module)
        ``(qualified module name, module)`` per decoder block; a forward hook on the module sees
        the block's output.
    """
    taps = []
    for i, up_block in enumerate(unet.up_blocks):
        attentions = getattr(up_block, "attentions", None)
        upsamplers = getattr(up_block, "upsamplers", None)
        n_layers = len(up_block.resnets)
        for j in range(n_layers):
            if j == n_layers - 1 and upsamplers:
                taps.append((f"up_blocks.{i}.upsamplers.{len(upsamplers) - 1}", upsamplers[-1]))
            elif attentions is not None and len(attentions) > j:
                taps.append((f"up_blocks.{i}.attentions.{j}", attentions[j]))
            else:
                taps.append((f"up_blocks.{i}.resnets.{j}", up_block.resnets[j]))
    return taps


def list_decoder_blocks(unet, image_size=None):
    """List the decoder blocks of a UNet with their channels and output resolution.

    The numbers are the ones ``DDPMFeatureTransformer(blocks=...)`` takes. Resolutions are found by
    running the model once on a zero image of ``image_size`` (default: the model's
    ``sample_size``), so they are exact for any architecture.

    Parameters
    ----------
    unet : diffusers.UNet2DModel or Backbone
        The model.
    image_size : int or (int, int), default=None
        Input resolution; defaults to the model's ``config.sample_size``.

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
    unet = getattr(unet, "unet", unet)
    height, width = _as_hw(image_size if image_size is not None else unet.config.sample_size)
    taps = decoder_block_modules(unet)
    shapes = {}
    handles = [module.register_forward_hook(_shape_recorder(shapes, k)) for k, (_, module) in enumerate(taps)]
    param = next(unet.parameters())
    try:
        with torch.inference_mode():
            x = torch.zeros(1, unet.config.in_channels, height, width, device=param.device, dtype=param.dtype)
            unet(x, torch.tensor([0], device=param.device))
    finally:
        for handle in handles:
            handle.remove()
    blocks = []
    for k, (name, _) in enumerate(taps):
        i, j = _position(unet, k)
        up_block = unet.up_blocks[i]
        blocks.append(
            DecoderBlock(
                index=k,
                up_block=i,
                layer=j,
                module_name=name,
                channels=shapes[k][1],
                resolution=tuple(shapes[k][2:]),
                has_attention=getattr(up_block, "attentions", None) is not None,
                has_upsampler=(j == len(up_block.resnets) - 1 and bool(getattr(up_block, "upsamplers", None))),
            )
        )
    return blocks


def format_decoder_blocks(blocks):
    """Return a printable table of :func:`list_decoder_blocks`'s result."""
    lines = [f"{'block':>5}  {'channels':>8}  {'resolution':>10}  module"]
    for b in blocks:
        res = "x".join(str(r) for r in b.resolution)
        extra = " (+attention)" if b.has_attention else ""
        extra += " (+upsampler)" if b.has_upsampler else ""
        lines.append(f"{b.index:>5}  {b.channels:>8}  {res:>10}  {b.module_name}{extra}")
    return "\n".join(lines)


def _position(unet, k):
    for i, up_block in enumerate(unet.up_blocks):
        if k < len(up_block.resnets):
            return i, k
        k -= len(up_block.resnets)
    raise IndexError(k)


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
