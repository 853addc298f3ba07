"""Loading a noise-prediction UNet and its noise schedule into a :class:`Backbone`."""

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors


def paper_scheduler():
    """The paper's noise schedule: linear betas 1e-4 to 0.02 over 1000 steps."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)


class Backbone:
    """A diffusers ``UNet2DModel`` with its noise schedule.

    Estimators keep a backbone as a parameter; scikit-learn's ``clone`` shares it instead of
    deep-copying the network for every grid-search candidate (``__sklearn_clone__``), and pickling
    stores the weights as safetensors on the CPU, so a model used on a GPU unpickles anywhere.

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        The noise-prediction network.
    scheduler : diffusers scheduler, default=None
        Provides ``add_noise`` and ``num_train_timesteps``; the paper's linear 1000-step schedule
        when None.
    source : str, default=None
        Where the model came from, for messages and reports.

    Examples
    --------
    >>> from sklearn_ddpm.backbone import Backbone, tiny_unet
    >>> backbone = Backbone(tiny_unet())
    >>> backbone.image_size
    (32, 32)
    """

    def __init__(self, unet, scheduler=None, source=None):
        if not isinstance(unet, UNet2DModel):
            raise TypeError(f"Backbone expects a diffusers UNet2DModel, got {type(unet).__name__}.")
        self.unet = unet.eval()
        self.scheduler = scheduler if scheduler is not None else paper_scheduler()
        self.source = source
        self._fingerprint = None

    def __sklearn_clone__(self):
        return self

    def __deepcopy__(self, memo):
        # Estimators never modify their backbone; copies would only multiply its memory.
        return self

    def __repr__(self):
        n_params = sum(p.numel() for p in self.unet.parameters())
        return f"Backbone(source={self.source!r}, image_size={self.image_size}, params={n_params:,})"

    @property
    def image_size(self):
        """The model's native input resolution ``(height, width)``."""
        size = self.unet.config.sample_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def fingerprint(self):
        """A hash of the configuration and weights; activation caches key on it."""
        if self._fingerprint is None:
            digest = hashlib.sha1(json.dumps(_plain_config(self.unet), sort_keys=True).encode())
            for name, tensor in sorted(self.unet.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            digest.update(json.dumps(_plain_config(self.scheduler), sort_keys=True).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def save_pretrained(self, path):
        """Write a ``DDPMPipeline``-style folder (``unet/``, ``scheduler/``) that loads back."""
        path = Path(path)
        self.unet.save_pretrained(path / "unet")
        self.scheduler.save_pretrained(path / "scheduler")
        (path / "model_index.json").write_text(
            json.dumps(
                {
                    "_class_name": "DDPMPipeline",
                    "unet": ["diffusers", "UNet2DModel"],
                    "scheduler": ["diffusers", type(self.scheduler).__name__],
                },
                indent=2,
            )
        )

    def __getstate__(self):
        state_dict = {k: v.detach().to("cpu").contiguous() for k, v in self.unet.state_dict().items()}
        return {
            "unet_config": _plain_config(self.unet),
            "unet_weights": save_safetensors(state_dict),
            "scheduler_class": type(self.scheduler).__name__,
            "scheduler_config": _plain_config(self.scheduler),
            "source": self.source,
            "fingerprint": self._fingerprint,
        }

    def __setstate__(self, state):
        import diffusers

        unet = UNet2DModel.from_config(state["unet_config"])
        unet.load_state_dict(load_safetensors(state["unet_weights"]))
        scheduler_class = getattr(diffusers, state["scheduler_class"])
        self.__init__(unet.eval(), scheduler_class.from_config(state["scheduler_config"]), state["source"])
        self._fingerprint = state["fingerprint"]


def load_backbone(model=None, scheduler=None):
    """Turn what a user passes as ``model`` into a :class:`Backbone`.

    Parameters
    ----------
    model : Backbone, UNet2DModel, str or path-like, default=None
        - None: the bundled horse DDPM shipped with the package;
        - a :class:`Backbone` (returned as is) or a ``UNet2DModel`` instance;
        - a local folder written by ``save_pretrained`` — either a UNet folder (``config.json``) or a
          pipeline folder with ``unet/`` and ``scheduler/`` subfolders;
        - a guided-diffusion checkpoint file (``.pt``), converted on the fly;
        - otherwise a Hugging Face hub id, passed to ``UNet2DModel.from_pretrained``.
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
        return model if scheduler is None else Backbone(model.unet, scheduler, model.source)
    if model is None:
        model = bundled_backbone_path()
    if isinstance(model, UNet2DModel):
        return Backbone(model, scheduler, source=type(model).__name__)
    if isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model must be a diffusers UNet2DModel, got {type(model).__name__}; convert guided-diffusion "
            "models with sklearn_ddpm.backbone.convert_guided_diffusion."
        )
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a UNet2DModel, a Backbone, a path or a hub id, got {type(model).__name__}.")
    path = Path(model)
    if path.is_file():
        from ._guided_diffusion import load_guided_diffusion

        return load_guided_diffusion(path, scheduler=scheduler)
    if path.is_dir():
        return _load_folder(path, scheduler, source=str(model))
    if str(model).startswith((".", "/", "~")) or path.suffix in {".pt", ".pth", ".ckpt"}:
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
    if (path / "unet" / "config.json").is_file():
        unet_path, scheduler_path = path / "unet", path / "scheduler"
    elif (path / "config.json").is_file():
        unet_path, scheduler_path = path, path
    elif _has_training_checkpoints(path):
        raise ValueError(
            f"{path} holds train-ddpm checkpoints but no exported model (the run has not finished). Continue "
            f"it with `sklearn-ddpm train-ddpm IMAGE_DIR {path}`, or write the model of its last checkpoint "
            f"with `sklearn-ddpm train-ddpm IMAGE_DIR {path} --export-only`."
        )
    else:
        raise ValueError(
            f"{path} is not a diffusers model folder: expected config.json or unet/config.json "
            "(as written by UNet2DModel.save_pretrained or DDPMPipeline.save_pretrained)."
        )
    config = json.loads((unet_path / "config.json").read_text())
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise ValueError(f"{unet_path} holds a {config['_class_name']}, not a UNet2DModel.")
    # low_cpu_mem_usage=False: the default needs `accelerate` and warns on every load without it
    unet = UNet2DModel.from_pretrained(str(unet_path), torch_dtype=torch.float32, low_cpu_mem_usage=False)
    if scheduler is None and (scheduler_path / "scheduler_config.json").is_file():
        scheduler = _scheduler_from_config(json.loads((scheduler_path / "scheduler_config.json").read_text()))
    return Backbone(unet, scheduler, source=source)


def _load_hub(repo_id, scheduler):
    errors = []
    for subfolder in ("unet", None):
        try:
            unet = UNet2DModel.from_pretrained(repo_id, subfolder=subfolder, torch_dtype=torch.float32, low_cpu_mem_usage=False)
            break
        except (OSError, ValueError) as exc:
            errors.append((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    else:
        raise OSError(
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


def _plain_config(configurable):
    # Bookkeeping keys (class name and diffusers version, added by save_pretrained; where the model
    # was loaded from; which values were defaulted) say nothing about what the model computes: the
    # same weights must fingerprint the same whether built in memory, loaded from a copied folder
    # or unpickled. ``_name_or_path`` is also a Path after loading a local folder, which json
    # cannot write.
    config = {k: v for k, v in dict(configurable.config).items() if not k.startswith("_")}
    return json.loads(json.dumps(config, default=_jsonable))


def _jsonable(value):
    return str(value) if isinstance(value, Path) else list(value)
