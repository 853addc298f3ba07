"""Backbones: loading diffusion UNets, the paper's decoder-block numbering, block listing."""

from ._blocks import DecoderBlock, decoder_block_modules, format_decoder_blocks, list_decoder_blocks
from ._factory import adm_unet_config, tiny_unet
from ._loading import Backbone, bundled_backbone_path, load_backbone, paper_scheduler

__all__ = [
    "Backbone",
    "DecoderBlock",
    "adm_unet_config",
    "bundled_backbone_path",
    "decoder_block_modules",
    "format_decoder_blocks",
    "list_decoder_blocks",
    "load_backbone",
    "paper_scheduler",
    "tiny_unet",
]
