"""The paper's decoder-block numbering on diffusers UNets."""

import torch
from diffusers import UNet2DModel

from sklearn_ddpm.backbone import (
    Backbone,
    adm_unet_config,
    decoder_block_modules,
    format_decoder_blocks,
    list_decoder_blocks,
    tiny_unet,
)

# Baranchuk et al.'s default blocks and what they are on the ADM-256 (channels in units of the
# base width c, resolution).
PAPER_BLOCKS = {5: (4, 32), 6: (2, 32), 7: (2, 32), 8: (2, 64), 12: (1, 128)}


def _adm256(base_channels, device="cpu"):
    with torch.device(device):
        return UNet2DModel(**adm_unet_config(image_size=256, base_channels=base_channels)).eval()


def test_adm256_layout_at_low_width():
    c = 32
    blocks = list_decoder_blocks(_adm256(c))
    assert [b.index for b in blocks] == list(range(18))
    for k, (mult, size) in PAPER_BLOCKS.items():
        assert (blocks[k].channels, blocks[k].resolution) == (mult * c, (size, size)), k
    # Three blocks per level from 8x8 to 256x256; each level's last block is already upsampled.
    assert [b.resolution[0] for b in blocks] == [8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128, 256,
                                                 256, 256, 256]
    assert [b.channels // c for b in blocks] == [4] * 6 + [2] * 6 + [1] * 6
    assert [b.has_upsampler for b in blocks] == [k % 3 == 2 and k < 15 for k in range(18)]
    assert [b.has_attention for b in blocks] == [True] * 9 + [False] * 9


def test_adm256_full_size_on_meta_device():
    # The real 552.8 M-parameter network, shapes only: the paper's 1024@32², 512@32², 512@32²,
    # 512@64², 256@128².
    unet = _adm256(256, device="meta")
    assert sum(p.numel() for p in unet.parameters()) == 552_814_086
    blocks = list_decoder_blocks(unet)
    assert [(blocks[k].channels, blocks[k].resolution[0]) for k in PAPER_BLOCKS] == [
        (1024, 32), (512, 32), (512, 32), (512, 64), (256, 128)]


def test_block_modules_are_the_last_layer_of_each_block():
    unet = tiny_unet()
    names = [name for name, _ in decoder_block_modules(unet)]
    # tiny_unet: 4 levels (32, 16, 8, 4), attention at 8x8, i.e. in up-block 1.
    assert names[:3] == ["up_blocks.0.resnets.0", "up_blocks.0.resnets.1", "up_blocks.0.upsamplers.0"]
    assert names[3:6] == ["up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.upsamplers.0"]
    assert names[-1] == "up_blocks.3.resnets.2"
    modules = dict(unet.named_modules())
    assert all(modules[name] is module for name, module in decoder_block_modules(unet))


def assert_last_blocks_feed_the_next_up_block(unet, blocks_per_up_block):
    """Each up-block's last block output is what the next up-block's first resnet receives (before the skip concat)."""
    outputs, inputs = {}, {}
    taps = decoder_block_modules(unet)
    handles = [m.register_forward_hook(lambda mod, a, o, k=k: outputs.__setitem__(k, o)) for k, (_, m) in
               enumerate(taps)]
    handles += [block.resnets[0].register_forward_pre_hook(lambda mod, a, i=i: inputs.__setitem__(i, a[0]))
                for i, block in enumerate(unet.up_blocks)]
    with torch.no_grad():
        unet(torch.randn(1, 3, 32, 32), torch.tensor([10]))
    for handle in handles:
        handle.remove()
    for i in range(1, len(unet.up_blocks)):
        last_of_previous = outputs[blocks_per_up_block * i - 1]
        assert torch.equal(inputs[i][:, : last_of_previous.shape[1]], last_of_previous)


def test_hooked_outputs_are_what_the_next_block_receives():
    assert_last_blocks_feed_the_next_up_block(tiny_unet(), 3)


def test_image_size_and_backbone_arguments():
    unet = tiny_unet()
    native = list_decoder_blocks(Backbone(unet))
    assert native[-1].resolution == (32, 32)
    doubled = list_decoder_blocks(unet, image_size=64)
    assert [b.resolution[0] for b in doubled] == [2 * b.resolution[0] for b in native]
    assert list_decoder_blocks(unet, image_size=(32, 64))[-1].resolution == (32, 64)
    assert [b.channels for b in doubled] == [b.channels for b in native]


def test_format_decoder_blocks():
    blocks = list_decoder_blocks(tiny_unet())
    lines = format_decoder_blocks(blocks).splitlines()
    assert lines[0].split() == ["block", "channels", "resolution", "module"]
    assert len(lines) == 1 + len(blocks) == 13
    assert lines[1].split() == ["0", "32", "4x4", "up_blocks.0.resnets.0"]
    assert lines[6].split() == ["5", "32", "16x16", "up_blocks.1.upsamplers.0", "(+attention)", "(+upsampler)"]
    assert lines[-1].split() == ["11", "16", "32x32", "up_blocks.3.resnets.2"]
    assert format_decoder_blocks([]).splitlines() == lines[:1]


def _ncsnpp_unet():
    """NCSN++-style UNet2DModel: skip up-blocks, whose main path is upsampled by ``resnet_up``."""
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("SkipDownBlock2D", "AttnSkipDownBlock2D", "SkipDownBlock2D"),
        up_block_types=("SkipUpBlock2D", "AttnSkipUpBlock2D", "SkipUpBlock2D"), attention_head_dim=8,
        norm_num_groups=8,
    ).eval()


def test_skip_up_blocks_are_read_after_their_upsampler():
    unet = _ncsnpp_unet()
    blocks = list_decoder_blocks(unet)
    assert [b.module_name for b in blocks] == [
        "up_blocks.0.resnets.0", "up_blocks.0.resnet_up",
        "up_blocks.1.resnets.0", "up_blocks.1.resnet_up",  # the single attention runs before resnet_up
        "up_blocks.2.resnets.0", "up_blocks.2.resnets.1"]
    # As in every other layout, an up-block's last block is at the next level's resolution ...
    assert [b.resolution[0] for b in blocks] == [8, 16, 16, 32, 32, 32]
    assert [b.has_upsampler for b in blocks] == [False, True, False, True, False, False]
    assert [b.has_attention for b in blocks] == [False, False, False, True, False, False]
    # ... and is exactly what the next up-block's first resnet receives.
    assert_last_blocks_feed_the_next_up_block(unet, 2)
