"""A probe of how many inputs each UNet forward pass holds, for tests of ``--batch-size``."""

import torch


class UNetBatchSpy:
    """Records the batch size of every ``UNet2DModel`` forward pass while the ``with`` block runs."""

    def __enter__(self):
        from diffusers import UNet2DModel

        self.rows = []

        def hook(module, args):
            if isinstance(module, UNet2DModel):
                self.rows.append(int(args[0].shape[0]))

        self._handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
