"""``DDPMFeatureTransformer``: images → per-pixel diffusion features."""

import hashlib
import numbers
import os

import numpy as np
import torch
from diffusers import DiffusionPipeline
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ..backbone import Backbone, load_backbone
from ..utils import check_images, resolve_device
from ..utils._devices import resolve_autocast_dtype
from ..utils._persistence import VersionedPickleMixin
from ..utils._validation import check_int_tuple
from ._batching import auto_batch_size
from ._cache import ActivationCache, resolve_cache
from ._container import PixelFeatures
from ._extraction import noise_for, resize_images, tile_noise, to_model_input
from ._tiled import tiled_features

PAPER_BLOCKS = (5, 6, 7, 8, 12)
PAPER_STEPS = (50, 150, 250)
_MODEL_IS_BACKBONE_UNET = "<the UNet of backbone_>"
_MODEL_IS_BACKBONE_PIPELINE = "<a pipeline of backbone_'s networks>"


def _padded(indices, rows):
    """``indices`` padded to ``rows`` by repeating the last: every pass runs at one size."""
    return indices + [indices[-1]] * (rows - len(indices))


def auto_blocks(n_blocks):
    """The paper's blocks for an 18-block decoder; the same relative depths for other decoders."""
    if n_blocks == 18:
        return PAPER_BLOCKS
    return tuple(sorted({min(n_blocks - 1, round(b * n_blocks / 18)) for b in PAPER_BLOCKS}))


# auto_wrap_output_keys=None: the output is per-pixel feature maps, not a table, so scikit-learn's
# set_output(transform="pandas"/"polars") does not apply; set_output below accepts "default" only.
class DDPMFeatureTransformer(VersionedPickleMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Pixel features from the decoder of a denoising diffusion model (Baranchuk et al., 2022).

    For every image: resize to the model's resolution, scale to [-1, 1], noise it with
    ``q(x_t | x_0)`` for each timestep in ``steps``, run the UNet and keep the outputs of the decoder
    ``blocks``. Each pixel's feature is the concatenation, over steps and then blocks, of the
    block activations bilinearly upsampled to the image's *original* size — so masks are used at
    the size they were drawn, and predictions come back at that size.

    Block numbers are the paper's: the decoder's residual blocks counted from the deepest level,
    the last block of a level including its upsampler (see
    :func:`sklearn_ddpm.backbone.list_decoder_blocks`).

    Parameters
    ----------
    model : Backbone, diffusers.UNet2DModel, diffusers pipeline, str or path-like, default=None
        The diffusion UNet: an instance, a ``save_pretrained`` folder, a guided-diffusion ``.pt``
        checkpoint, or a hub id. None uses the small horse DDPM bundled with the package. A
        Stable-Diffusion-style pipeline (folder, object, or :class:`~sklearn_ddpm.LatentBackbone`)
        works the same way on VAE latents, conditioned on ``prompt`` (docs/latent_backbones.md).
    blocks : "auto" or tuple of int, default="auto"
        Decoder blocks to read. "auto" is the paper's ``(5, 6, 7, 8, 12)`` for an 18-block
        (ADM-256) decoder and the same relative depths for other decoders.
    steps : tuple of int, default=(50, 150, 250)
        Diffusion timesteps ``t`` at which the image is noised.
    image_size : int or (int, int), default=None
        Resolution the images (or, with ``tile="auto"``, the tiles) are resized to: the UNet's
        input; the model's native one when None (for a latent backbone, image pixels: 512 for
        Stable Diffusion 1.5).
    tile : None, "auto" or int, default=None
        None: every image is resized whole to ``image_size`` (the paper's setting). Otherwise the
        image is resized to ``scale`` image pixels per model pixel and read as overlapping square
        tiles of this many model pixels a side ("auto": ``image_size``, which must then be square),
        each run through the UNet on its own; every block's activations are blended across the
        tiles' overlaps into one map of the whole image (linear ramps), so a large image keeps its
        detail and the memory of a forward pass is that of a tile. An image that fits one tile gets
        the features the untiled transformer gives it at ``image_size = tile``, bit for bit when
        every image of the call fits one tile. Features of an image whose blended maps would
        exceed 256 MiB are computed band by band when read (at prediction) and never held whole.
        See docs/large_images.md.
    tile_overlap : None or int, default=None
        Least number of model pixels neighbouring tiles share (None: a quarter of the tile). The
        step between tiles is ``tile - tile_overlap`` rounded down to a multiple of the UNet's size
        multiple; the last tile of a row ends at the image's edge.
    scale : float, default=1.0
        Image pixels per model pixel when tiling: 1 reads the image at full resolution, 4 at a
        quarter of it (a 4,000-pixel-wide image becomes 1,000 model pixels, about 21 tiles of 64
        across). Must be 1 without ``tile``. Like ``blocks`` and ``steps``, a setting to choose by
        cross-validation (``GridSearchCV``).
    channels : None, "mean" or tuple of int, default=None
        Which channels of an image become the backbone's R, G and B: None, the images are RGB;
        three indices, those channels (``(2, 1, 0)`` for BGR, three bands of a multispectral
        image); one index, that channel as gray (copied to R, G and B); "mean", the mean of all
        channels as gray. A 2-D image is one channel. With ``channels``, an ``(N, H, W)`` array is
        a stack of N one-channel images.
    intensity : {"8bit", "percentile"}, default="8bit"
        How pixel values become 0-255: "8bit" takes uint8 as is, other integers in 0-255 as they
        are and floats in [0, 1] times 255, and refuses other ranges; "percentile" maps each
        channel's 0.5th and 99.5th percentiles onto 0 and 255 (clipped), for 16-bit, 32-bit and
        float data (microscopy, remote sensing). See docs/large_images.md.
    scheduler : diffusers scheduler, default=None
        Noise schedule for ``q(x_t | x_0)``; the checkpoint's own when it has one, else linear
        1000 steps.
    noise : {"shared", "per_step"}, default="shared"
        "shared": one fixed noise for all steps (paper); "per_step": a fresh noise per step.
    n_noise_samples : int, default=1
        Average the activations over this many noise draws (paper, Table 5; DIFT averages 8, see
        :data:`~sklearn_ddpm.features.FEATURE_PRESETS`).
    prompt : str, default=""
        Text a text-conditioned (latent) backbone is conditioned on, encoded once per prompt; the
        empty prompt is DIFT's default. Must be "" for unconditional backbones.
    output : {"compact", "dense"}, default="compact"
        "compact" returns :class:`PixelFeatures` (native-resolution float16 maps, upsampled on
        demand); "dense" returns upsampled float32 features, an ``(N, H, W, D)`` array (a list
        when sizes differ).
    feature_dtype : {"float16", "float32"}, default="float16"
        Storage type of compact features.
    batch_size : "auto" or int, default="auto"
        Images per UNet forward pass (one pass per timestep of ``steps`` and batch of images).
        Lower it to bound the memory of the forward pass. "auto" fits a pass in 1 GiB on the
        CPU and a quarter of a GPU's memory, estimated from the model's block shapes at
        ``image_size``: 1 for the full-width ADM-256 at 256² on the CPU, at most 8 on the CPU
        and 64 on a GPU (see :meth:`forward_batch_size`). The images of a call are split into
        as few passes as ``batch_size`` allows, all of one size (the last one padded), because
        PyTorch's results depend, in the last float32 bits, on the size of a batch: so an image's
        features never depend on which other images share its pass, or on what was cached.
    device : str, default="cpu"
        "cpu" or "cuda" (or "cuda:N").
    autocast_dtype : {None, "auto", "bfloat16", "float16"}, default=None
        Mixed precision of the UNet's forward pass, on the CPU as on CUDA (features are stored as
        ``feature_dtype`` either way). "auto": bfloat16 on CUDA GPUs that support it and on CPUs
        with native bf16 instructions (AVX512-BF16 or AMX), where it is faster than float32;
        float32 elsewhere. "float16" is for GPUs (CPUs emulate it slowly).
    compile : bool, default=False
        Run the UNet through ``torch.compile`` (worth it for many images on a GPU).
    memory : None, str, path-like, joblib.Memory or ActivationCache, default=None
        Cache of UNet activations, as scikit-learn's ``memory`` parameters: None caches nothing;
        a directory (or a ``joblib.Memory``, whose location is used) caches on disk; an
        :class:`ActivationCache` caches in memory (and optionally on disk). A grid search over
        ``blocks``, ``steps`` or the classifier's parameters reuses what earlier candidates and
        folds computed; cached features are bitwise equal to computed ones. Clones share an
        ``ActivationCache`` object; worker processes of ``n_jobs > 1`` share only a directory.
    random_state : int, RandomState instance or None, default=0
        Seed of the noise. An int fixes it; a ``RandomState`` or None draws the seed once, at
        ``fit``.
    progress : bool, default=False
        Show a progress bar over images.
    flip_tta : bool, default=False
        Test-time flip augmentation: :meth:`transform` also computes the features of every
        image's horizontal mirror (twice the UNet work) and attaches them to the output
        (``PixelFeatures.mirrored``); :class:`~sklearn_ddpm.MLPEnsembleClassifier` then averages
        every member's probabilities on the image and on its mirror (mapped back) before it
        votes. :meth:`fit_transform`, which prepares training data, leaves the mirrors out: the
        classifier trains on the images alone. Only with ``output="compact"``.

    Attributes
    ----------
    backbone_ : Backbone
        The loaded model and noise schedule.
    blocks_ : tuple of int
        Blocks actually used.
    n_features_out_ : int
        Length of a pixel's feature vector.
    layer_names_ : list of (int, int)
        ``(timestep, block)`` of each feature group, in feature order.
    input_size_ : (int, int)
        The UNet's input: ``image_size_``, or the tile.
    tile_size_ : int or None
        Tile side in model pixels (None without tiles).
    tile_overlap_ : int
        Least overlap of neighbouring tiles in model pixels (set with tiles only).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm import DDPMFeatureTransformer
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> images = np.random.default_rng(0).integers(0, 255, (2, 40, 48, 3), dtype=np.uint8)
    >>> features = DDPMFeatureTransformer(tiny_unet(), blocks=(3, 6), steps=(50,)).fit_transform(images)
    >>> features.shape
    (2, 40, 48, 64)
    """

    #: Parameters read only by ``transform`` (``fit`` and ``fit_transform`` do not use them): a
    #: search that varies only these shares one fit per fold (``sklearn_ddpm.model_selection._shared_fits``).
    _prediction_params = ("flip_tta",)

    _parameter_constraints = {
        "model": [None, Backbone, str, os.PathLike, torch.nn.Module, DiffusionPipeline],
        "blocks": [StrOptions({"auto"}), "array-like", Interval(numbers.Integral, 0, None, closed="left")],
        "steps": ["array-like", Interval(numbers.Integral, 0, None, closed="left")],
        "image_size": [None, Interval(numbers.Integral, 8, None, closed="left"), tuple, list],
        "tile": [None, StrOptions({"auto"}), Interval(numbers.Integral, 8, None, closed="left")],
        "tile_overlap": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "channels": [None, StrOptions({"mean"}), tuple, list],
        "intensity": [StrOptions({"8bit", "percentile"})],
        "scheduler": [None, HasMethods(["add_noise"])],
        "noise": [StrOptions({"shared", "per_step"})],
        "n_noise_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "prompt": [str],
        "output": [StrOptions({"compact", "dense"})],
        "feature_dtype": [StrOptions({"float16", "float32"})],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "autocast_dtype": [None, StrOptions({"auto", "bfloat16", "float16"})],
        "compile": ["boolean"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"]), ActivationCache],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "flip_tta": ["boolean"],
    }

    def __init__(
        self,
        model=None,
        *,
        blocks="auto",
        steps=PAPER_STEPS,
        image_size=None,
        tile=None,
        tile_overlap=None,
        scale=1.0,
        channels=None,
        intensity="8bit",
        scheduler=None,
        noise="shared",
        n_noise_samples=1,
        prompt="",
        output="compact",
        feature_dtype="float16",
        batch_size="auto",
        device="cpu",
        autocast_dtype=None,
        compile=False,
        memory=None,
        random_state=0,
        progress=False,
        flip_tta=False,
    ):
        self.model = model
        self.blocks = blocks
        self.steps = steps
        self.image_size = image_size
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.scale = scale
        self.channels = channels
        self.intensity = intensity
        self.scheduler = scheduler
        self.noise = noise
        self.n_noise_samples = n_noise_samples
        self.prompt = prompt
        self.output = output
        self.feature_dtype = feature_dtype
        self.batch_size = batch_size
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.compile = compile
        self.memory = memory
        self.random_state = random_state
        self.progress = progress
        self.flip_tta = flip_tta

    def fit(self, X=None, y=None):
        """Load the backbone and check the settings; no training happens here.

        Parameters
        ----------
        X : ignored
            Images (validated in :meth:`transform`).
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        resolve_device(self.device, fitting=True)
        resolve_cache(self.memory)  # a bad directory fails here, not at the first transform
        self.backbone_ = load_backbone(self.model, self.scheduler)
        if self.prompt and not self.backbone_.takes_prompt:
            raise ValueError(f"prompt={self.prompt!r}: the backbone {self.backbone_!r} is not text-conditioned; "
                             "leave prompt empty.")
        n_blocks = self.backbone_.n_decoder_blocks
        blocks = auto_blocks(n_blocks) if isinstance(self.blocks, str) else check_int_tuple(self.blocks, "blocks")
        bad = [b for b in blocks if not 0 <= b < n_blocks]
        if bad:
            raise ValueError(
                f"blocks {bad} do not exist: this UNet has decoder blocks 0..{n_blocks - 1} "
                "(see sklearn_ddpm.backbone.list_decoder_blocks)."
            )
        self.blocks_ = tuple(dict.fromkeys(blocks))
        steps = check_int_tuple(self.steps, "steps")
        n_train = int(self.backbone_.scheduler.config.num_train_timesteps)
        bad = [t for t in steps if not 0 <= t < n_train]
        if bad:
            raise ValueError(f"steps {bad} are outside the schedule's 0..{n_train - 1}.")
        self.steps_ = tuple(dict.fromkeys(steps))
        if self.image_size is None:
            self.image_size_ = self.backbone_.image_size
        else:
            size = self.image_size
            self.image_size_ = (
                (int(size), int(size)) if isinstance(size, numbers.Integral) else tuple(int(s) for s in size)
            )
        factor = self.backbone_.size_multiple
        if any(s % factor for s in self.image_size_):
            raise ValueError(f"image_size {self.image_size_} must be divisible by {factor} for this UNet.")
        self._check_tiles(factor)
        self.noise_seed_ = (
            int(self.random_state)
            if isinstance(self.random_state, numbers.Integral)
            else int(check_random_state(self.random_state).randint(2**31))
        )
        self.layer_names_ = [(t, b) for t in self.steps_ for b in self.blocks_]
        channels = self._block_channels()
        self.n_features_out_ = len(self.steps_) * sum(channels[b] for b in self.blocks_)
        return self

    def _check_tiles(self, factor):
        """Resolve ``tile``, ``tile_overlap`` and ``scale``: sets ``input_size_`` and ``tile_size_``."""
        self.tile_size_ = None
        self.input_size_ = self.image_size_
        if self.tile is None:
            if self.scale != 1:
                raise ValueError(f"scale={self.scale} applies to tiles: set tile='auto' or a tile size, or scale=1.")
            if self.tile_overlap is not None:
                raise ValueError("tile_overlap applies to tiles: set tile='auto' or a tile size, or tile_overlap=None.")
            return
        if isinstance(self.tile, str):
            if self.image_size_[0] != self.image_size_[1]:
                raise ValueError(f"tile='auto' uses image_size as the tile, which must be square (got "
                                 f"{self.image_size_}); pass tile=<side in model pixels>.")
            tile = self.image_size_[0]
        else:
            tile = int(self.tile)
            if self.image_size is not None and self.image_size_ != (tile, tile):
                raise ValueError(f"tile={tile} and image_size={self.image_size} both set the UNet's input; "
                                 "set image_size=None (or tile='auto').")
        if tile % factor:
            raise ValueError(f"tile={tile} must be divisible by {factor} for this UNet.")
        overlap = tile // 4 if self.tile_overlap is None else int(self.tile_overlap)
        if overlap >= tile:
            raise ValueError(f"tile_overlap={overlap} must be smaller than the tile ({tile}).")
        self.tile_size_ = tile
        self.tile_overlap_ = overlap
        self.input_size_ = (tile, tile)

    def transform(self, X):
        """Compute pixel features.

        Parameters
        ----------
        X : array of shape (n_images, height, width, 3) or list of (height, width, 3) arrays
            RGB images, uint8 (or floats in [0, 1]); other channel counts and value ranges with
            the ``channels`` and ``intensity`` parameters. A zarr or dask array (or a list of
            them) is read here.

        Returns
        -------
        PixelFeatures or ndarray or list of ndarray
            See the ``output`` parameter.
        """
        return self._transform(X, mirrors=self.flip_tta)

    def fit_transform(self, X, y=None):
        """Fit, then compute the features of ``X`` for training: as :meth:`transform`, but
        without the mirror images of ``flip_tta`` (the classifier trains on the images alone).

        Parameters
        ----------
        X : array of shape (n_images, height, width, 3) or list of (height, width, 3) arrays
        y : ignored

        Returns
        -------
        PixelFeatures or ndarray or list of ndarray
        """
        return self.fit(X, y)._transform(X, mirrors=False)

    def _transform(self, X, mirrors):
        check_is_fitted(self, "backbone_")
        images = check_images(X, channels=self.channels, intensity=self.intensity)
        if mirrors and self.output == "dense":
            raise ValueError("flip_tta=True needs output='compact' (dense output cannot carry the mirror features).")
        features = self._compact_features(images)
        if mirrors:
            features.mirrored = self._compact_features([np.ascontiguousarray(image[:, ::-1]) for image in images])
        if self.output == "dense":
            return features.to_dense()
        return features

    def set_output(self, *, transform=None):
        """scikit-learn's output API: ``"default"`` (or None) is accepted, the others are refused.

        ``Pipeline.set_output(transform="default")`` and the like pass through this transformer.
        Its output is :class:`PixelFeatures`: per-image feature maps (images x height x width x
        features, sizes may differ between images), not a table of samples x features, so
        ``"pandas"`` and ``"polars"`` cannot apply; they raise a ``ValueError`` saying so.

        Parameters
        ----------
        transform : {"default"} or None, default=None

        Returns
        -------
        self

        Examples
        --------
        >>> from sklearn_ddpm import DDPMFeatureTransformer
        >>> DDPMFeatureTransformer().set_output(transform="default").steps
        (50, 150, 250)
        """
        if transform not in (None, "default"):
            raise ValueError(
                f"set_output(transform={transform!r}) does not apply to DDPMFeatureTransformer: its output is "
                "PixelFeatures, per-image feature maps (images x height x width x features, sizes may differ), "
                "not a table of samples x features; only transform='default' is accepted."
            )
        return self

    def get_feature_names_out(self, input_features=None):
        """Names ``t{step}_b{block}_c{channel}`` of the feature columns."""
        check_is_fitted(self, "backbone_")
        channels = self._block_channels()
        return np.asarray([f"t{t}_b{b}_c{c}" for t, b in self.layer_names_ for c in range(channels[b])], dtype=object)

    def forward_batch_size(self, device=None):
        """Images per UNet forward pass: ``batch_size``, or what "auto" picks for ``device``.

        Parameters
        ----------
        device : str or torch.device, default=None
            The device of the pass; the ``device`` parameter's when None.

        Returns
        -------
        int
        """
        check_is_fitted(self, "backbone_")
        if self.batch_size != "auto":
            return int(self.batch_size)
        device = resolve_device(self.device if device is None else device, fitting=False)
        return auto_batch_size(self.backbone_.decoder_blocks(self.input_size_), device)

    def _block_channels(self):
        return {b.index: b.channels for b in self.backbone_.decoder_blocks(self.input_size_)}

    def _compact_features(self, images):
        if self.tile is None:
            maps = self._unit_maps(resize_images(images, self.image_size_))
            maps = [maps[name] for name in self.layer_names_]
            return PixelFeatures(maps, self.layer_names_, [image.shape[:2] for image in images], images=images)
        return tiled_features(self, images)

    def _progress_bar(self, n_units, desc="DDPM features", unit="img·step"):
        """A bar over ``n_units`` UNet inputs times the steps (shown with ``progress=True``)."""
        return tqdm(total=n_units * len(self.steps_), desc=desc, unit=unit, disable=not self.progress)

    def _unit_maps(self, units, bar=None, offsets=None):
        """Activations of UNet inputs: ``{(t, b): tensor (n, h, w, C)}`` of ``feature_dtype``.

        ``units``: ``(n, height, width, 3)`` uint8 at ``input_size_`` (resized images or tiles).
        ``offsets``: each tile's ``(row, column)`` in its image's model grid, which picks its noise
        from the image's noise field (:func:`tile_noise`); None: every unit gets the untiled noise.
        """
        device = resolve_device(self.device, fitting=False)
        backbone = self.backbone_
        cache = resolve_cache(self.memory)
        dtype = torch.float16 if self.feature_dtype == "float16" else torch.float32
        autocast = resolve_autocast_dtype(self.autocast_dtype, device)
        resized = units
        per_step = self.noise == "per_step"
        # Every forward pass runs `rows` inputs at one timestep, whatever is cached: a row's
        # activations depend on the size of its pass (and the device and threads), not on its
        # neighbours (see Backbone.decoder_activations), so cached features are computed ones.
        batch = self.forward_batch_size(device)
        rows = -(-len(units) // -(-len(units) // batch))  # as few passes as possible, of equal size
        threads = torch.get_num_threads() if device.type == "cpu" else None
        computed_by = (rows, device.type, threads, str(autocast))
        noise_key = (self.noise, self.noise_seed_, self.n_noise_samples, self.feature_dtype)
        model_key = (backbone.fingerprint, backbone.conditioning_key(self.prompt))  # weights, VAE, text embedding
        offsets = [(0, 0)] * len(units) if offsets is None else [tuple(int(v) for v in o) for o in offsets]
        keys = [
            (model_key, hashlib.sha1(unit.tobytes()).hexdigest(), self.input_size_, noise_key, computed_by)
            + ((("tile_at",) + offset,) if any(offset) else ())  # a tile's noise depends on where it lies
            for unit, offset in zip(resized, offsets)
        ]

        # The output maps are allocated once; cache entries are views into them, not copies.
        blocks = {b.index: b for b in backbone.decoder_blocks(self.input_size_)}
        maps = {
            (t, b): torch.empty((len(units), *blocks[b].resolution, blocks[b].channels), dtype=dtype)
            for t, b in self.layer_names_
        }
        todo = {t: [] for t in self.steps_}  # images whose activations at t are not all cached
        for i, key in enumerate(keys):
            for t in self.steps_:
                hits = [cache.get(key + (t, b)) if cache is not None else None for b in self.blocks_]
                if any(hit is None for hit in hits):
                    todo[t].append(i)
                    continue
                for b, hit in zip(self.blocks_, hits):
                    maps[(t, b)][i].copy_(hit)

        # The UNet's clean inputs: the images, or a latent backbone's VAE latents, encoded once per
        # call (in passes of `rows`, like the UNet's) before the UNet runs, so the VAE is off the GPU by then.
        needed = sorted(set().union(*todo.values()))
        x0s = {}
        if needed:
            with backbone.encoder(device) as encode:
                for start in range(0, len(needed), rows):
                    chunk = needed[start : start + rows]
                    x0s.update(zip(chunk, encode(to_model_input(resized[_padded(chunk, rows)]))))
            shape = next(iter(x0s.values())).shape
        own_bar = bar is None
        bar = self._progress_bar(len(units)) if own_bar else bar
        bar.update(len(units) * len(self.steps_) - sum(map(len, todo.values())))  # cached
        for t, indices in todo.items():
            t_batch = torch.full((rows,), t)
            for start in range(0, len(indices), rows):
                chunk = indices[start : start + rows]
                x0 = torch.stack([x0s[i] for i in _padded(chunk, rows)])
                sums = {}
                for draw in range(self.n_noise_samples):
                    if any(map(any, (offsets[i] for i in chunk))):
                        scale = shape[-1] / self.input_size_[1]  # a latent backbone's noise is in latent pixels
                        eps = torch.stack([
                            tile_noise(self.noise_seed_, draw, t, shape, per_step,
                                       (round(offsets[i][0] * scale), round(offsets[i][1] * scale)))
                            for i in _padded(chunk, rows)
                        ])
                    else:
                        eps = noise_for(self.noise_seed_, draw, t, shape, per_step).expand(rows, *shape)
                    x_t = backbone.scheduler.add_noise(x0, eps, t_batch)
                    acts = backbone.decoder_activations(
                        x_t, t_batch, self.blocks_, device=device, autocast_dtype=autocast, compile=self.compile,
                        prompt=self.prompt,
                    )
                    for b, act in acts.items():
                        act = act[: len(chunk)].float()
                        sums[b] = act if b not in sums else sums[b] + act
                host = {
                    b: _to_host((total / self.n_noise_samples).permute(0, 2, 3, 1).to(dtype))
                    for b, total in sums.items()
                }
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # the pinned host copies were asynchronous
                for b, batch in host.items():
                    for row, i in enumerate(chunk):
                        maps[(t, b)][i].copy_(batch[row])
                        if cache is not None:
                            cache.put(keys[i] + (t, b), maps[(t, b)][i])
                bar.update(len(chunk))
        if own_bar:
            bar.close()
        return maps


    def __getstate__(self):
        state = super().__getstate__()
        # A UNet passed as `model` is the one inside `backbone_`: store its weights once.
        backbone = state.get("backbone_")
        if backbone is not None and state.get("model") is backbone.unet:
            state["model"] = _MODEL_IS_BACKBONE_UNET
        elif backbone is not None and isinstance(state.get("model"), DiffusionPipeline) and \
                getattr(state["model"], "unet", None) is backbone.unet:
            # A pipeline passed as `model`: its networks are the backbone's; it unpickles as the backbone.
            state["model"] = _MODEL_IS_BACKBONE_PIPELINE
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model"), str) and state["model"] == _MODEL_IS_BACKBONE_UNET:
            state["model"] = state["backbone_"].unet
        elif isinstance(state.get("model"), str) and state["model"] == _MODEL_IS_BACKBONE_PIPELINE:
            state["model"] = state["backbone_"]
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags


def _to_host(tensor):
    """Copy to the CPU; from a GPU through pinned memory, without waiting for the copy."""
    if tensor.device.type != "cuda":
        return tensor.contiguous()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor, non_blocking=True)
