"""``LatentBackbone``: a text-conditioned latent UNet (Stable Diffusion 1.x/2.x) as a feature backbone.

The image is encoded by the VAE (the mean of its latent distribution, times ``scaling_factor``),
noised in latent space with the pipeline's scheduler, and run through the
``UNet2DConditionModel`` with the text embedding of a prompt (the empty prompt by default, encoded
once per prompt and kept). Decoder blocks are read exactly as for a ``UNet2DModel``
(:mod:`._blocks`), at latent resolution.

``transformers`` (for the text encoder and tokenizer) is an optional dependency:
``pip install 'sklearn-ddpm[latent]'``.
"""

import contextlib
import copy
import hashlib
import json
import tempfile
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ._backbone import Backbone, _contiguous_input, _resolved, _update_with_module, library_class, plain_config
from ._blocks import _as_hw

LATENT_EXTRA_HINT = "pip install 'sklearn-ddpm[latent]'"

# The components read from a pipeline folder or object; the others (safety_checker,
# feature_extractor, image_encoder) play no part in features and are not loaded.
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def import_transformers():
    """``transformers``, or an ImportError that says which extra installs it."""
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"Stable-Diffusion-style (text-conditioned latent) backbones need `transformers` for their text "
            f"encoder: {LATENT_EXTRA_HINT}"
        ) from exc
    return transformers


def stable_diffusion_scheduler():
    """The noise schedule Stable Diffusion 1.x/2.x were trained with (1000 scaled-linear steps).

    :class:`LatentBackbone`'s default when no scheduler is given; pipeline folders bring their own.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import stable_diffusion_scheduler
    >>> stable_diffusion_scheduler().config.beta_schedule
    'scaled_linear'
    """
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


class LatentBackbone(Backbone):
    """A Stable-Diffusion-style pipeline as a feature backbone: VAE, text encoder, conditional UNet.

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
        The latent noise-prediction network (SD-1.x/2.x layout; UNets that need extra
        conditioning, such as SDXL's ``addition_embed_type``, are refused).
    vae : diffusers.AutoencoderKL
        Encodes images to latents: ``(mean of the latent distribution - shift_factor) *
        scaling_factor``, as Stable Diffusion's training did (the mean, not a sample, so an image's
        latents are deterministic).
    text_encoder : transformers.CLIPTextModel
        Embeds the prompt (its last hidden state is the UNet's ``encoder_hidden_states``).
    tokenizer : transformers.CLIPTokenizer
        Pads/truncates the prompt to ``model_max_length`` tokens, as diffusers' pipelines do.
    scheduler : diffusers scheduler, default=None
        Provides ``add_noise``; Stable Diffusion's training schedule (1000 scaled-linear steps)
        when None.
    source : str, default=None
        Where the model came from, for messages and reports.

    Notes
    -----
    Sizes: :attr:`image_size` and the ``image_size`` arguments are in image pixels; the UNet and
    its decoder blocks run at latent resolution, ``image / vae_scale_factor`` (8 for Stable
    Diffusion), and features are upsampled from there like any block's.

    Memory: on CUDA with ``autocast_dtype`` the device copy of the UNet holds its weights in that
    dtype (half of float32); the VAE runs in float32 on the device only while images are encoded
    (:meth:`encoder`) and the text encoder runs where it lives (the CPU after loading), once per
    prompt, so neither holds GPU memory while the UNet runs. See docs/latent_backbones.md.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import load_backbone
    >>> backbone = load_backbone("path/to/stable-diffusion-v1-5")  # doctest: +SKIP
    >>> backbone.image_size, backbone.n_decoder_blocks  # doctest: +SKIP
    ((512, 512), 12)
    """

    takes_prompt = True
    _unet_class = UNet2DConditionModel

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler=None, source=None):
        if not isinstance(unet, UNet2DConditionModel):
            raise TypeError(f"LatentBackbone expects a diffusers UNet2DConditionModel, got {type(unet).__name__}.")
        extra = {k: unet.config.get(k) for k in ("addition_embed_type", "class_embed_type", "encoder_hid_dim_type")}
        if any(v is not None for v in extra.values()):
            raise ValueError(
                f"this UNet2DConditionModel needs conditioning besides a text embedding ({extra}; e.g. SDXL); "
                "only Stable-Diffusion-1.x/2.x-style UNets are supported as backbones."
            )
        if not callable(getattr(vae, "encode", None)) or "scaling_factor" not in vae.config:
            raise TypeError(f"vae must be a diffusers AutoencoderKL-like model, got {type(vae).__name__}.")
        if not callable(tokenizer) or not callable(text_encoder):
            raise TypeError("text_encoder and tokenizer must be a transformers text model and its tokenizer.")
        super().__init__(unet, scheduler if scheduler is not None else stable_diffusion_scheduler(), source)
        self.vae = vae.eval()
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self._text_embeddings = {}  # prompt -> (1, tokens, dim) float32 on the CPU

    def __repr__(self):
        n_params = sum(p.numel() for p in self.unet.parameters())
        return (f"LatentBackbone(source={self.source!r}, image_size={self.image_size}, "
                f"latent_size={self.latent_size()}, unet_params={n_params:,})")

    # -- what the model is -------------------------------------------------------------------------
    @property
    def vae_scale_factor(self):
        """Image pixels per latent pixel along each axis (8 for Stable Diffusion)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self):
        """The native image resolution ``(height, width)``: the UNet's ``sample_size`` times the VAE factor."""
        return tuple(s * self.vae_scale_factor for s in super().image_size)

    @property
    def size_multiple(self):
        """Image sizes must be multiples of this: the VAE factor times the UNet's."""
        return self.vae_scale_factor * super().size_multiple

    def latent_size(self, image_size=None):
        """UNet input ``(height, width)`` for images of ``image_size`` (default: native)."""
        size = self.image_size if image_size is None else _as_hw(image_size)
        return tuple(s // self.vae_scale_factor for s in size)

    def _input_size(self, image_size):
        return self.latent_size(image_size)

    def _extend_fingerprint(self, digest):
        # The VAE decides the latents. The text encoder and tokenizer enter through
        # conditioning_key, which hashes the embedding actually used.
        _update_with_module(digest, self.vae)
        return digest

    def with_scheduler(self, scheduler):
        return LatentBackbone(self.unet, self.vae, self.text_encoder, self.tokenizer, scheduler, self.source)

    # -- the text condition ------------------------------------------------------------------------
    def text_embedding(self, prompt=""):
        """The UNet's ``encoder_hidden_states`` for ``prompt``: ``(1, tokens, dim)`` float32 on the CPU, kept per prompt."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}.")
        with self._lock:
            if prompt not in self._text_embeddings:
                tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                        truncation=True, return_tensors="pt")
                device = next(self.text_encoder.parameters()).device
                # As diffusers' StableDiffusionPipeline.encode_prompt (without clip_skip).
                mask = (tokens.attention_mask.to(device)
                        if getattr(self.text_encoder.config, "use_attention_mask", False) else None)
                with torch.inference_mode():
                    hidden = self.text_encoder(tokens.input_ids.to(device), attention_mask=mask)[0]
                self._text_embeddings[prompt] = hidden.to("cpu", torch.float32).clone()
            return self._text_embeddings[prompt]

    def conditioning_key(self, prompt=""):
        """A hash of :meth:`text_embedding` ``(prompt)``: activation caches key on it with :attr:`fingerprint`."""
        embedding = self.text_embedding(prompt)
        digest = hashlib.sha1(str(tuple(embedding.shape)).encode())
        digest.update(embedding.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _unet_kwargs(self, prompt, batch_size, device, dtype):
        embedding = self.text_embedding(prompt).to(device, dtype)
        return {"encoder_hidden_states": embedding.expand(batch_size, -1, -1)}

    def _weights_dtype(self, device, autocast_dtype):
        # Half-precision weights on CUDA halve the UNet's memory (SD-1.5: 1.7 instead of 3.4 GB).
        return autocast_dtype if torch.device(device).type == "cuda" else None

    # -- encoding images ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def encoder(self, device="cpu"):
        """A context giving ``encode(x)``: images in [-1, 1] ``(B, 3, H, W)`` → scaled latents on the CPU.

        The VAE runs in float32 on ``device``: a copy there while the context is open (freed on exit,
        so it holds no GPU memory while the UNet runs), or the VAE itself where it lives.
        """
        device = torch.device(device)
        home = next(self.vae.parameters()).device
        vae = self.vae if _resolved(home) == _resolved(device) else copy.deepcopy(self.vae).to(device, torch.float32)
        handles = [m.register_forward_pre_hook(_contiguous_input) for m in vae.modules()
                   if isinstance(m, torch.nn.GroupNorm)]
        config = self.vae.config
        shift = config.get("shift_factor") or 0.0

        def encode(x):
            with torch.inference_mode():
                latents = vae.encode(x.to(device, next(vae.parameters()).dtype)).latent_dist.mean
                return ((latents.float() - shift) * config.scaling_factor).to("cpu")

        try:
            yield encode
        finally:
            for handle in handles:
                handle.remove()
            if vae is not self.vae:
                del vae
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    # -- saving and loading ----------------------------------------------------------------------
    def save_pretrained(self, path):
        """Write a ``StableDiffusionPipeline`` folder (``model_index.json``, unet/, vae/, text_encoder/, tokenizer/, scheduler/).

        :meth:`from_pretrained`, :func:`load_backbone` and
        ``diffusers.StableDiffusionPipeline.from_pretrained`` read it back (without a safety checker).
        """
        import diffusers

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
                 "feature_extractor": [None, None], "safety_checker": [None, None],
                 "requires_safety_checker": False}
        for name in COMPONENTS:
            component = getattr(self, name)
            library = "transformers" if name in ("text_encoder", "tokenizer") else "diffusers"
            index[name] = [library, type(component).__name__]
            if name == "tokenizer":
                component.save_pretrained(str(path / name))
            else:
                component.save_pretrained(str(path / name), **({} if name == "scheduler" else {"safe_serialization": True}))
        (path / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_pretrained(cls, path, scheduler=None, source=None):
        """Read a ``StableDiffusionPipeline``-style folder (or hub id) component by component, in float32 on the CPU.

        Parameters
        ----------
        path : str or path-like
            Folder with ``model_index.json`` and ``unet/``, ``vae/``, ``text_encoder/``,
            ``tokenizer/``, ``scheduler/`` (others, such as ``safety_checker/``, are not read).
        scheduler : diffusers scheduler, default=None
            Replaces the folder's scheduler.
        source : str, default=None
            Defaults to ``str(path)``.
        """
        import diffusers
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        transformers = import_transformers()
        index = DiffusionPipeline.load_config(str(path))
        missing = [name for name in COMPONENTS if not (index.get(name) or [None])[0]]
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}: a text-conditioned latent backbone needs "
                             f"{', '.join(COMPONENTS)} (a StableDiffusionPipeline folder).")
        libraries = {"diffusers": diffusers, "transformers": transformers}
        components = {}
        # Bars for loading a few components are noise; both switches are global, so restore them.
        switches = [lib_logging for lib_logging in (diffusers_logging, transformers.utils.logging)
                    if lib_logging.is_progress_bar_enabled()]
        for lib_logging in switches:
            lib_logging.disable_progress_bar()
        try:
            for name in COMPONENTS:
                if name == "scheduler" and scheduler is not None:
                    components[name] = scheduler
                    continue
                library, class_name = index[name]
                component_class = getattr(libraries[library], class_name)
                kwargs = {}
                if name in ("unet", "vae"):
                    # low_cpu_mem_usage=False: the default needs `accelerate` and warns without it
                    kwargs = dict(dtype=torch.float32, low_cpu_mem_usage=False)
                elif name == "text_encoder":
                    kwargs = dict(dtype=torch.float32)
                components[name] = component_class.from_pretrained(str(path), subfolder=name, **kwargs)
        finally:
            for lib_logging in switches:
                lib_logging.enable_progress_bar()
        return cls(**components, source=str(path) if source is None else source)

    @classmethod
    def from_pipeline(cls, pipeline, scheduler=None, source=None):
        """The components of an in-memory ``StableDiffusionPipeline`` (shared, not copied)."""
        components = {name: getattr(pipeline, name, None) for name in COMPONENTS}
        if scheduler is not None:
            components["scheduler"] = scheduler
        missing = [name for name, c in components.items() if c is None]
        if missing:
            raise ValueError(f"the pipeline has no {', '.join(missing)}; a latent backbone needs {', '.join(COMPONENTS)}.")
        return cls(**components, source=type(pipeline).__name__ if source is None else source)

    def __getstate__(self):
        state = super().__getstate__()
        with tempfile.TemporaryDirectory() as folder:
            self.tokenizer.save_pretrained(folder)
            tokenizer_files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
        state.update(
            vae_class=type(self.vae).__name__,
            vae_config=plain_config(self.vae),
            vae_weights=_weights(self.vae),
            text_encoder_class=type(self.text_encoder).__name__,
            text_encoder_config=self.text_encoder.config.to_dict(),
            text_encoder_weights=_weights(self.text_encoder),
            tokenizer_class=type(self.tokenizer).__name__,
            tokenizer_files=tokenizer_files,
            text_embeddings=dict(self._text_embeddings),
        )
        return state

    def __setstate__(self, state):
        import diffusers

        transformers = import_transformers()
        unet = UNet2DConditionModel.from_config(state["unet_config"])
        unet.load_state_dict(load_safetensors(state["unet_weights"]))
        vae = library_class(diffusers, state["vae_class"], diffusers.ModelMixin).from_config(state["vae_config"])
        vae.load_state_dict(load_safetensors(state["vae_weights"]))
        text_encoder_class = library_class(transformers, state["text_encoder_class"], transformers.PreTrainedModel)
        text_encoder = text_encoder_class(text_encoder_class.config_class.from_dict(state["text_encoder_config"]))
        # strict=False: weights a model re-creates as buffers (position ids) need not be stored
        text_encoder.load_state_dict(load_safetensors(state["text_encoder_weights"]), strict=False)
        with tempfile.TemporaryDirectory() as folder:
            for name, data in state["tokenizer_files"].items():
                if Path(name).name != name or name in (".", ".."):  # a crafted state must not write elsewhere
                    raise ValueError(f"tokenizer file name {name!r} is not a plain file name")
                (Path(folder) / name).write_bytes(data)
            tokenizer_class = library_class(transformers, state["tokenizer_class"], transformers.PreTrainedTokenizerBase)
            tokenizer = tokenizer_class.from_pretrained(folder)
        scheduler = library_class(diffusers, state["scheduler_class"], diffusers.SchedulerMixin).from_config(
            state["scheduler_config"])
        self.__init__(unet, vae, text_encoder, tokenizer, scheduler, state["source"])
        self._text_embeddings = dict(state["text_embeddings"])
        self._fingerprint = state["fingerprint"]


def _weights(module):
    return save_safetensors({k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()})
