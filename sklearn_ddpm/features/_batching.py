"""Images per UNet forward pass for ``DDPMFeatureTransformer(batch_size="auto")``."""

import torch

#: memory a forward pass may take on the CPU: a small machine's share, whatever the model
CPU_BUDGET_BYTES = 2**30
#: share of the GPU's memory a forward pass may take
GPU_BUDGET_FRACTION = 0.25
#: most images per pass: beyond these, larger passes gain little speed (and on the CPU, 8 keeps
#: small models' results those of the former default, ``batch_size=8``)
MAX_IMAGES = {"cpu": 8, "cuda": 64}
#: an fp32 forward pass holds about this many times the bytes of the decoder's block outputs (the
#: encoder's skip tensors mirror them; ResNet blocks add temporaries): 4 images at 256² through the
#: full-width ADM-256 took 1.6 GB per image, its 18 block outputs 0.37 GB per image
ACTIVATION_FACTOR = 5


def forward_bytes_per_image(decoder_blocks):
    """Estimated memory of one image's fp32 forward pass, from the decoder's block shapes."""
    elements = sum(block.channels * block.resolution[0] * block.resolution[1] for block in decoder_blocks)
    return ACTIVATION_FACTOR * 4 * elements


def auto_batch_size(decoder_blocks, device):
    """Images per forward pass within the device's budget (at least 1, at most ``MAX_IMAGES``).

    Parameters
    ----------
    decoder_blocks : list of DecoderBlock
        The backbone's decoder at the input size (:meth:`Backbone.decoder_blocks`).
    device : torch.device

    Returns
    -------
    int
    """
    if device.type == "cuda":
        budget = GPU_BUDGET_FRACTION * torch.cuda.get_device_properties(device).total_memory
        most = MAX_IMAGES["cuda"]
    else:
        budget, most = CPU_BUDGET_BYTES, MAX_IMAGES["cpu"]
    return int(max(1, min(most, budget // forward_bytes_per_image(decoder_blocks))))
