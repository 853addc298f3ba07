"""``Backbone``: the noise-prediction UNet with its noise schedule, and the one owner of both.

Estimators share a backbone (``clone`` and ``deepcopy`` return it, so a grid search does not copy
the network for every candidate); that is safe because nothing outside this class touches the
network: reading decoder blocks, running on a device and compiling are its methods, and none of
them changes ``unet``. Device copies and compiled wrappers live in the backbone's own caches.
"""

import contextlib
import copy
import hashlib
import json
import threading
from pathlib import Path

import torch
from diffusers import DDPMPipeline, UNet2DModel
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ._blocks import _as_hw, decoder_block_modules, trace_decoder_blocks
from ._schedule import noise_scheduler


class _StopForward(Exception):
    """Raised by a hook once the deepest wanted block ran: the rest of the UNet is not needed."""


class Backbone:
    """A diffusers ``UNet2DModel`` with its noise schedule.

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        The noise-prediction network. It is put in eval mode and never modified afterwards.
    scheduler : diffusers scheduler, default=None
        Provides ``add_noise`` and ``num_train_timesteps``; the paper's linear 1000-step schedule
        (:func:`noise_scheduler`) when None.
    source : str, default=None
        Where the model came from, for messages and reports.

    Notes
    -----
    Pickling stores the weights as safetensors on the CPU, so a backbone used on a GPU unpickles
    anywhere. Running on another device than the UNet's works on a copy of the network kept by
    the backbone; the UNet itself stays where it is, so pipelines that share a backbone never
    move it under each other. Forward passes that capture activations hold a lock: two threads
    that share a backbone take turns rather than see each other's hooks.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import Backbone, tiny_unet
    >>> backbone = Backbone(tiny_unet())
    >>> backbone.image_size
    (32, 32)
    >>> backbone.n_decoder_blocks
    12
    """

    #: Whether the UNet is conditioned on a text prompt (:class:`LatentBackbone`); this one is not.
    takes_prompt = False
    _unet_class = UNet2DModel

    def __init__(self, unet, scheduler=None, source=None):
        if not isinstance(unet, self._unet_class):
            raise TypeError(f"{type(self).__name__} expects a diffusers {self._unet_class.__name__}, "
                            f"got {type(unet).__name__}.")
        self.unet = unet.eval()
        self.scheduler = scheduler if scheduler is not None else noise_scheduler()
        self.source = source
        self._fingerprint = None
        self._lock = threading.RLock()
        self._models = {}  # (device, compile, weights dtype) -> the network that runs there
        self._block_listings = {}  # image size -> list of DecoderBlock

    def __sklearn_clone__(self):
        return self

    def __deepcopy__(self, memo):
        # Nothing changes a backbone after construction; copies would only multiply its memory.
        return self

    def __repr__(self):
        n_params = sum(p.numel() for p in self.unet.parameters())
        return f"Backbone(source={self.source!r}, image_size={self.image_size}, params={n_params:,})"

    # -- what the model is -------------------------------------------------------------------------
    @property
    def image_size(self):
        """The model's native input resolution ``(height, width)``."""
        size = self.unet.config.sample_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def size_multiple(self):
        """Input sizes must be multiples of this: the UNet halves the resolution at each level but the last."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def n_decoder_blocks(self):
        """How many decoder blocks the paper's numbering gives this UNet (ADM-256: 18)."""
        return len(decoder_block_modules(self.unet))

    def decoder_blocks(self, image_size=None):
        """:func:`list_decoder_blocks` for this UNet at ``image_size`` (default: native), cached."""
        size = self.image_size if image_size is None else _as_hw(image_size)
        with self._lock:
            if size not in self._block_listings:
                self._block_listings[size] = trace_decoder_blocks(self.unet, self._input_size(size))
            return self._block_listings[size]

    def _input_size(self, image_size):
        """The UNet's input ``(height, width)`` for images of ``image_size`` (a latent backbone's is smaller)."""
        return image_size

    @property
    def fingerprint(self):
        """A hash of the configuration and weights; activation caches key on it."""
        if self._fingerprint is None:
            digest = hashlib.sha1()
            _update_with_module(digest, self.unet)
            digest.update(json.dumps(plain_config(self.scheduler), sort_keys=True).encode())
            self._fingerprint = self._extend_fingerprint(digest).hexdigest()
        return self._fingerprint

    def _extend_fingerprint(self, digest):
        """Subclasses add the other networks that shape the activations (a latent backbone's VAE)."""
        return digest

    def conditioning_key(self, prompt=""):
        """What, besides :attr:`fingerprint`, the activations depend on: nothing for an unconditional UNet."""
        _check_no_prompt(self, prompt)
        return None

    def with_scheduler(self, scheduler):
        """The same networks with another noise schedule (a new backbone; this one is unchanged)."""
        return Backbone(self.unet, scheduler, self.source)

    @contextlib.contextmanager
    def encoder(self, device="cpu"):
        """A context giving ``encode(x)``: images in [-1, 1] → the UNet's clean inputs ``x_0``.

        Pixel-space UNets read the images themselves; :class:`LatentBackbone` encodes them with
        its VAE, which is on ``device`` only inside the context.
        """
        yield lambda x: x

    # -- running it --------------------------------------------------------------------------------
    def decoder_activations(self, x, timesteps, blocks, *, device="cpu", autocast_dtype=None, compile=False,
                            prompt=""):
        """Activations of decoder ``blocks`` for noised inputs ``x`` at ``timesteps``.

        A row's activations do not depend on the other rows of the batch, only on the batch's
        size (and the device and thread count): GroupNorm inputs are made contiguous, because
        PyTorch's channels-last GroupNorm on the CPU splits its reductions by position in the
        batch. This is what lets cached activations equal freshly computed ones.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C, H, W)
        timesteps : torch.Tensor of shape (B,)
        blocks : iterable of int
            Paper block numbers (see :func:`list_decoder_blocks`).
        device : str or torch.device, default="cpu"
        autocast_dtype : torch.dtype, default=None
            Mixed precision for the forward pass.
        compile : bool, default=False
            Run a ``torch.compile``-d network (kept by the backbone, one per device).
        prompt : str, default=""
            Text the UNet is conditioned on; only for text-conditioned backbones (:attr:`takes_prompt`).

        Returns
        -------
        dict of int to torch.Tensor of shape (B, C_b, h_b, w_b), on ``device``
        """
        device = torch.device(device)
        blocks = set(int(b) for b in blocks)
        with self._lock:
            model, runner = self._model_on(device, compile, self._weights_dtype(device, autocast_dtype))
            dtype = next(model.parameters()).dtype
            unet_kwargs = self._unet_kwargs(prompt, len(x), device, dtype)
            taps = decoder_block_modules(model)
            last = max(blocks)
            captured = {}

            def capture(k):
                def hook(module, args, output):
                    captured[k] = output[0] if isinstance(output, (tuple, list)) else output
                    if k == last:
                        raise _StopForward

                return hook

            handles = [taps[k][1].register_forward_hook(capture(k)) for k in blocks]
            handles += [m.register_forward_pre_hook(_contiguous_input) for m in model.modules()
                        if isinstance(m, torch.nn.GroupNorm)]
            autocast = (torch.autocast(device_type=device.type, dtype=autocast_dtype)
                        if autocast_dtype is not None else contextlib.nullcontext())
            try:
                with torch.inference_mode(), autocast:
                    runner(x.to(device, dtype), timesteps.to(device), **unet_kwargs)
            except _StopForward:
                pass
            finally:
                for handle in handles:
                    handle.remove()
        return captured

    def unet_on(self, device):
        """The UNet that runs on ``device`` (the backbone's own where it lives, else its kept copy), e.g.
        for a diffusers pipeline that samples from it. It is shared: run it, never modify it."""
        with self._lock:
            return self._model_on(device, False)[0]

    def _unet_kwargs(self, prompt, batch_size, device, dtype):
        """Extra arguments of the UNet's forward call (a latent backbone's text embedding)."""
        _check_no_prompt(self, prompt)
        return {}

    def _weights_dtype(self, device, autocast_dtype):
        """dtype of the device copy of the UNet; None keeps the UNet's own."""
        return None

    def _model_on(self, device, compile, dtype=None):
        """``(network, callable)`` on ``device``: the UNet itself where it lives, else a kept copy."""
        device = _resolved(device)
        key = (device, bool(compile), dtype)
        if key not in self._models:
            param = next(self.unet.parameters())
            if _resolved(param.device) == device and dtype in (None, param.dtype):
                model = self.unet
            else:
                model = copy.deepcopy(self.unet).to(device, dtype)
            self._models[key] = (model, torch.compile(model) if compile else model)
        return self._models[key]

    # -- saving and loading ----------------------------------------------------------------------
    def save_pretrained(self, path):
        """Write a ``DDPMPipeline`` folder (``model_index.json``, ``unet/``, ``scheduler/``).

        :meth:`from_pretrained` and :func:`load_backbone` read it back; so does
        ``diffusers.DDPMPipeline.from_pretrained``. The files get the permissions of a plain
        ``open()`` under the umask (the safetensors writer makes owner-only ones).
        """
        import os
        from pathlib import Path

        DDPMPipeline(unet=self.unet, scheduler=self.scheduler).save_pretrained(str(path), safe_serialization=True)
        umask = os.umask(0)
        os.umask(umask)
        for weights in Path(path).rglob("*.safetensors"):
            os.chmod(weights, 0o666 & ~umask)

    @classmethod
    def from_pretrained(cls, path, scheduler=None, source=None):
        """Read a ``DDPMPipeline`` folder written by :meth:`save_pretrained` (or diffusers).

        Parameters
        ----------
        path : str or path-like
            Folder with ``model_index.json``, ``unet/`` and ``scheduler/``.
        scheduler : diffusers scheduler, default=None
            Replaces the folder's scheduler.
        source : str, default=None
            Defaults to ``str(path)``.
        """
        from diffusers.utils import logging as diffusers_logging

        # A bar for loading two small components is noise; it is diffusers' global switch, so restore it.
        bar_was_on = diffusers_logging.is_progress_bar_enabled()
        diffusers_logging.disable_progress_bar()
        try:
            # low_cpu_mem_usage=False: the default needs `accelerate` and warns on every load without it
            pipeline = DDPMPipeline.from_pretrained(str(path), dtype=torch.float32, low_cpu_mem_usage=False)
        finally:
            if bar_was_on:
                diffusers_logging.enable_progress_bar()
        return cls(pipeline.unet, scheduler if scheduler is not None else pipeline.scheduler,
                   source=str(path) if source is None else source)

    def __getstate__(self):
        state_dict = {k: v.detach().to("cpu").contiguous() for k, v in self.unet.state_dict().items()}
        return {
            "unet_config": plain_config(self.unet),
            "unet_weights": save_safetensors(state_dict),
            "scheduler_class": type(self.scheduler).__name__,
            "scheduler_config": plain_config(self.scheduler),
            "source": self.source,
            "fingerprint": self._fingerprint,
        }

    def __setstate__(self, state):
        import diffusers

        unet = UNet2DModel.from_config(state["unet_config"])
        unet.load_state_dict(load_safetensors(state["unet_weights"]))
        scheduler_class = library_class(diffusers, state["scheduler_class"], diffusers.SchedulerMixin)
        self.__init__(unet.eval(), scheduler_class.from_config(state["scheduler_config"]), state["source"])
        self._fingerprint = state["fingerprint"]


def library_class(library, name, base):
    """``library.<name>``, refused unless it is a subclass of ``base``.

    Saved state names its classes (the scheduler's, a latent backbone's VAE and text encoder);
    this keeps a crafted file from naming any other attribute of the library to be called.
    """
    cls = getattr(library, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{name!r} is not a {base.__name__} of {library.__name__}")
    return cls


def _check_no_prompt(backbone, prompt):
    if prompt:
        raise ValueError(f"prompt={prompt!r} needs a text-conditioned backbone; {backbone!r} takes no prompt.")


def _update_with_module(digest, module):
    """Add a network's configuration and weights to a hash."""
    digest.update(json.dumps(plain_config(module), sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())


def _contiguous_input(module, args):
    return (args[0].contiguous(),) + tuple(args[1:])


def _resolved(device):
    """``device`` with its index filled in ("cuda" is the current CUDA device), so equal devices compare equal."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def plain_config(configurable):
    """A model's or scheduler's config as plain JSON values, without diffusers' bookkeeping keys.

    Bookkeeping keys (class name and diffusers version, added by save_pretrained; where the model
    was loaded from; which values were defaulted) say nothing about what the model computes: the
    same weights must fingerprint the same whether built in memory, loaded from a copied folder
    or unpickled. ``_name_or_path`` is also a Path after loading a local folder, which json
    cannot write.
    """
    config = {k: v for k, v in dict(configurable.config).items() if not k.startswith("_")}
    return json.loads(json.dumps(config, default=_jsonable))


def _jsonable(value):
    return str(value) if isinstance(value, Path) else list(value)
