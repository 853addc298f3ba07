"""Loading a noise-prediction UNet and its noise schedule into a :class:`Backbone`."""

import json
import re
from importlib import resources
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel

from ._backbone import Backbone
from ._guided_diffusion import load_guided_diffusion
from ._latent import LatentBackbone


def load_backbone(model=None, scheduler=None):
    """Turn what a user passes as ``model`` into a :class:`Backbone`.

    Parameters
    ----------
    model : Backbone, UNet2DModel, diffusers pipeline, str or path-like, default=None
        - None: the bundled horse DDPM shipped with the package;
        - a :class:`Backbone` or :class:`LatentBackbone` (returned as is) or a ``UNet2DModel`` instance;
        - a pipeline object: a ``DDPMPipeline``, or a ``StableDiffusionPipeline``-style one
          (``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``), whose components
          become a :class:`LatentBackbone` (shared, not copied);
        - a local folder written by ``save_pretrained`` — either a UNet folder (``config.json``), a
          pipeline folder with ``unet/`` and ``scheduler/`` subfolders, or a Stable-Diffusion-style
          pipeline folder (``model_index.json`` with ``unet/``, ``vae/``, ``text_encoder/``,
          ``tokenizer/``, ``scheduler/``; needs ``pip install 'sklearn-ddpm[latent]'``);
        - a guided-diffusion checkpoint file (``.pt``), converted on the fly;
        - a Hugging Face hub id ``owner/name`` (a UNet, DDPM pipeline or Stable Diffusion pipeline
          repository), checked with one quick request first (the local cache only under
          ``HF_HUB_OFFLINE=1``). A path that does not exist and does not look like a hub id (it
          starts with ".", "/" or "~", ends in a weights extension, or its first folder exists
          here) is a ``FileNotFoundError`` at once.
    scheduler : diffusers scheduler, default=None
        Overrides the noise schedule. By default the checkpoint's own scheduler config is used
        when it has one, else the paper's linear schedule.

    Returns
    -------
    Backbone

    Examples
    --------
    >>> from sklearn_ddpm.backbone import load_backbone, tiny_unet
    >>> load_backbone(tiny_unet()).image_size
    (32, 32)
    """
    if isinstance(model, Backbone):
        return model if scheduler is None else model.with_scheduler(scheduler)
    if model is None:
        model = bundled_backbone_path()
    if isinstance(model, UNet2DModel):
        return Backbone(model, scheduler, source=type(model).__name__)
    if isinstance(model, UNet2DConditionModel):
        raise TypeError(
            "a UNet2DConditionModel works on VAE latents with a text embedding: pass its pipeline (or pipeline "
            "folder), or LatentBackbone(unet, vae, text_encoder, tokenizer, scheduler)."
        )
    if _is_pipeline(model):
        if all(getattr(model, name, None) is not None for name in ("vae", "text_encoder")):
            return LatentBackbone.from_pipeline(model, scheduler)
        if isinstance(getattr(model, "unet", None), UNet2DModel):
            return Backbone(model.unet, scheduler if scheduler is not None else model.scheduler,
                            source=type(model).__name__)
        raise TypeError(f"{type(model).__name__} has no UNet2DModel, nor a VAE and text encoder to use as a backbone.")
    if isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model must be a diffusers UNet2DModel, got {type(model).__name__}; convert guided-diffusion "
            "models with sklearn_ddpm.backbone.convert_guided_diffusion."
        )
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a UNet2DModel, a Backbone, a path or a hub id, got {type(model).__name__}.")
    path = Path(model).expanduser()
    if path.is_file():
        return load_guided_diffusion(path, scheduler=scheduler)
    if path.is_dir():
        return _load_folder(path, scheduler, source=str(model))
    if not _looks_like_hub_id(str(model)):
        raise FileNotFoundError(f"model path {str(model)!r} does not exist.")
    return _load_hub(str(model), scheduler)


def bundled_backbone_path():
    """Path of the small DDPM trained on Weizmann horses that ships with the package."""
    path = Path(str(resources.files("sklearn_ddpm") / "_data" / "horse_ddpm"))
    if not (path / "unet").is_dir():
        raise FileNotFoundError(f"the bundled backbone is missing from {path}; reinstall sklearn-ddpm.")
    return path


def _has_training_checkpoints(path):
    from ..ddpm_training import list_checkpoints  # here: only the error path needs the training package

    return bool(list_checkpoints(path))


def _load_folder(path, scheduler, source):
    if (path / "model_index.json").is_file():
        if _unet_class_name(path / "unet") == "UNet2DConditionModel":
            return LatentBackbone.from_pretrained(path, scheduler, source=source)
        _check_unet_config(path / "unet")
        return Backbone.from_pretrained(path, scheduler, source=source)
    if not (path / "config.json").is_file():
        if _has_training_checkpoints(path):
            raise ValueError(
                f"{path} holds train-ddpm checkpoints but no exported model (the run has not finished). Continue "
                f"it with `sklearn-ddpm train-ddpm IMAGE_DIR {path}`, or write the model of its last checkpoint "
                f"with `sklearn-ddpm train-ddpm IMAGE_DIR {path} --export-only`."
            )
        raise ValueError(
            f"{path} is not a diffusers model folder: expected model_index.json with unet/ (as written by "
            "DDPMPipeline.save_pretrained or Backbone.save_pretrained) or config.json (UNet2DModel.save_pretrained)."
        )
    _check_unet_config(path)
    # low_cpu_mem_usage=False: the default needs `accelerate` and warns on every load without it
    unet = UNet2DModel.from_pretrained(str(path), dtype=torch.float32, low_cpu_mem_usage=False)
    if scheduler is None and (path / "scheduler_config.json").is_file():
        scheduler = _scheduler_from_config(json.loads((path / "scheduler_config.json").read_text()))
    return Backbone(unet, scheduler, source=source)


def _unet_class_name(unet_path):
    config_file = unet_path / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{unet_path.parent} has a model_index.json but no {config_file.relative_to(unet_path.parent)}.")
    return json.loads(config_file.read_text()).get("_class_name", "UNet2DModel")


def _check_unet_config(unet_path):
    class_name = _unet_class_name(unet_path)
    if class_name == "UNet2DConditionModel":
        raise ValueError(f"{unet_path} holds a UNet2DConditionModel, not a UNet2DModel: a text-conditioned latent "
                         "UNet needs its VAE and text encoder, so pass the whole pipeline folder (model_index.json "
                         "with unet/, vae/, text_encoder/, tokenizer/, scheduler/).")
    if class_name != "UNet2DModel":
        raise ValueError(f"{unet_path} holds a {class_name}, not a UNet2DModel.")


def _is_pipeline(model):
    from diffusers import DiffusionPipeline

    return isinstance(model, DiffusionPipeline)


# A hub id is "owner/name" (letters, digits, "-", "_", "."); anything else that does not exist is a path.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
_HUB_TIMEOUT_S = 10


def _looks_like_hub_id(text):
    """Whether a missing ``model`` path is worth a hub lookup.

    Not when it could only be a mistyped path: it starts with ".", "/" or "~", has a file
    extension of weights, has more than one separator, or its first part is a local folder
    (``runs/ddpmX`` with a ``runs/`` here is a typo, not an owner called "runs").
    """
    return (_HUB_ID.fullmatch(text) is not None and not text.lower().endswith(_CHECKPOINT_SUFFIXES)
            and not Path(text.split("/")[0]).exists())


def _check_hub_reachable(repo_id):
    """One quick request for the repository, so that a hub id that cannot load fails in seconds.

    Loading asks for several files, each retried on network errors: a minute of waiting when
    offline. Skipped under ``HF_HUB_OFFLINE=1``, where the loaders read the local cache only.
    """
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().model_info(repo_id, timeout=_HUB_TIMEOUT_S)
    except Exception as exc:  # network (httpx) and hub (HTTP 401/404) errors share no base class
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FileNotFoundError(
            f"could not load {repo_id!r}: it is not a local path, and the Hugging Face hub id could not be "
            f"reached ({type(exc).__name__}: {reason}). Offline? With the model in the local hub cache, set "
            "HF_HUB_OFFLINE=1; otherwise download it elsewhere and pass the folder."
        ) from exc


def _load_hub(repo_id, scheduler):
    _check_hub_reachable(repo_id)
    errors = []
    for subfolder in ("unet", None):
        try:
            config = UNet2DModel.load_config(repo_id, subfolder=subfolder)
            if subfolder == "unet" and config.get("_class_name") == "UNet2DConditionModel":
                return LatentBackbone.from_pretrained(repo_id, scheduler, source=repo_id)
            unet = UNet2DModel.from_pretrained(repo_id, subfolder=subfolder, dtype=torch.float32, low_cpu_mem_usage=False)
            break
        except (OSError, ValueError) as exc:
            errors.append((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    else:
        raise FileNotFoundError(
            f"could not load {repo_id!r}: it is not a local path, and loading it as a Hugging Face hub "
            f"id failed ({'; '.join(errors)}). Offline? Download it elsewhere and pass the folder."
        )
    if scheduler is None:
        for subfolder in ("scheduler", None):
            try:
                scheduler = DDPMScheduler.from_pretrained(repo_id, subfolder=subfolder)
                break
            except (OSError, ValueError):
                continue
    return Backbone(unet, scheduler, source=repo_id)


def _scheduler_from_config(config):
    import diffusers

    scheduler_class = getattr(diffusers, config.get("_class_name", "DDPMScheduler"), DDPMScheduler)
    if not hasattr(scheduler_class, "add_noise"):
        scheduler_class = DDPMScheduler
    return scheduler_class.from_config(config)
