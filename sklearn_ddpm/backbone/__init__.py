"""Backbones: loading diffusion UNets (pixel-space and Stable-Diffusion-style latent ones), the paper's
decoder-block numbering, block listing."""

from ._blocks import DecoderBlock, decoder_block_modules, format_decoder_blocks, list_decoder_blocks
from ._factory import adm_unet_config, tiny_unet
from ._guided_diffusion import convert_guided_diffusion, load_guided_diffusion
from ._backbone import Backbone
from ._latent import LatentBackbone, stable_diffusion_scheduler
from ._loading import bundled_backbone_path, load_backbone
from ._schedule import noise_scheduler

__all__ = [
    "Backbone",
    "DecoderBlock",
    "LatentBackbone",
    "adm_unet_config",
    "bundled_backbone_path",
    "convert_guided_diffusion",
    "decoder_block_modules",
    "format_decoder_blocks",
    "list_decoder_blocks",
    "load_backbone",
    "load_guided_diffusion",
    "noise_scheduler",
    "stable_diffusion_scheduler",
    "tiny_unet",
]
