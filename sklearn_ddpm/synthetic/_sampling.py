"""Sampling images from a DDPM into a folder, batched, seeded and resumable.

Sample ``i`` starts from the noise of its own generator (seeded by ``random_state`` and ``i``) and
sample ``i`` always shares its forward passes with the same other samples (batch ``i //
batch_size``): PyTorch's float results depend in the last bits on the size of a batch, so this is
what makes a restarted run write the images an uninterrupted one would have written.
"""

import json
import numbers
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler
from PIL import Image
from tqdm.auto import tqdm

from ..backbone import load_backbone
from ..utils import resolve_device
from ..utils._atomic import atomic_save_image, atomic_write, ensure_directory

#: the record of how a folder's samples were drawn; a resumed run must draw them the same way
MANIFEST = "samples.json"
SAMPLE_PATTERN = "sample_{:06d}.png"
SCHEDULERS = ("ddpm", "ddim")


class _EpsilonDDIMScheduler(DDIMScheduler):
    """DDIM for UNets that predict a variance too (guided-diffusion's ``learn_sigma``): ε is the first half.

    Deterministic DDIM (``eta = 0``) never uses the variance, so dropping it changes nothing.
    """

    def step(self, model_output, timestep, sample, *args, **kwargs):
        return super().step(model_output[:, : sample.shape[1]], timestep, sample, *args, **kwargs)


def sampling_scheduler(backbone, scheduler="ddim"):
    """The diffusers scheduler that samples from ``backbone`` with its own noise schedule.

    Parameters
    ----------
    backbone : Backbone
    scheduler : {"ddpm", "ddim"}, default="ddim"
        "ddpm": ancestral sampling (``DDPMScheduler``, the training chain, typically 1000 steps);
        "ddim": deterministic DDIM (``DDIMScheduler``, eta = 0), good samples in ~50 steps.

    Returns
    -------
    diffusers scheduler
        A fresh one (schedulers keep the timesteps of their last run).
    """
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}.")
    config = dict(backbone.scheduler.config)
    learned_variance = backbone.unet.config.out_channels == 2 * backbone.unet.config.in_channels
    if scheduler == "ddpm":
        # DDPMScheduler reads the variance from the model output itself when told it is there.
        if learned_variance:
            config["variance_type"] = "learned_range"
        return DDPMScheduler.from_config(config)
    return (_EpsilonDDIMScheduler if learned_variance else DDIMScheduler).from_config(config)


def sample_seed(random_state, index):
    """Seed of sample ``index``'s noise: independent of the batch it is drawn in."""
    return int(np.random.SeedSequence([int(random_state), int(index)]).generate_state(1)[0])


def sample_images(
    out_dir,
    n_samples,
    model=None,
    *,
    scheduler="ddim",
    num_inference_steps=50,
    batch_size=16,
    device="cpu",
    random_state=0,
    progress=True,
):
    """Draw ``n_samples`` images from a DDPM and write them as PNGs to ``out_dir``, resumably.

    Each ``sample_NNNNNN.png`` is written atomically, so an interrupted run leaves only complete
    images; running the same call again draws only the missing ones and, on the same device and
    thread count, the same images an uninterrupted run would have drawn. ``samples.json`` in the
    folder records the settings; a call with other settings on the same folder is refused
    (``n_samples`` may grow: more samples of the same run).

    Parameters
    ----------
    out_dir : str or path-like
        Folder of the samples (created).
    n_samples : int
        How many samples the folder should hold.
    model : Backbone, UNet2DModel, str, path-like or None, default=None
        The DDPM (see :func:`sklearn_ddpm.backbone.load_backbone`); None is the bundled horse DDPM.
    scheduler : {"ddim", "ddpm"}, default="ddim"
        Sampler (see :func:`sampling_scheduler`); both use the model's own noise schedule.
    num_inference_steps : int, default=50
        Denoising steps (the reference samples with the 1000 training steps of "ddpm").
    batch_size : int, default=16
        Samples per forward pass; changing it changes the images in the last float bits, so it
        is part of the recorded settings.
    device : str, default="cpu"
        "cpu" or "cuda" (or "cuda:N"). The noise is drawn on the CPU, so both start from the same.
    random_state : int, default=0
        Seed; sample ``i``'s noise depends on it and ``i`` only.
    progress : bool, default=True
        Show a progress bar over samples.

    Returns
    -------
    list of pathlib.Path
        The paths of samples ``0 .. n_samples - 1``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> from sklearn_ddpm.synthetic import sample_images
    >>> paths = sample_images(tempfile.mkdtemp(), 2, tiny_unet(out_channels=3), num_inference_steps=2,
    ...                       progress=False)
    >>> [p.name for p in paths]
    ['sample_000000.png', 'sample_000001.png']
    """
    _check_positive_int(n_samples, "n_samples")
    _check_positive_int(num_inference_steps, "num_inference_steps")
    _check_positive_int(batch_size, "batch_size")
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an int (a folder's samples are reproducible), got {random_state!r}.")
    out_dir = ensure_directory(out_dir, "out_dir")
    backbone = load_backbone(model)
    torch_device = resolve_device(device, fitting=True)
    settings = {
        "model_fingerprint": backbone.fingerprint,
        "image_size": list(backbone.image_size),
        "scheduler": scheduler,
        "num_inference_steps": int(num_inference_steps),
        "batch_size": int(batch_size),
        "random_state": int(random_state),
    }
    _check_manifest(out_dir, settings)
    with atomic_write(out_dir / MANIFEST, "w") as f:
        json.dump({**settings, "model": backbone.source, "n_samples": int(n_samples), "device": str(torch_device)},
                  f, indent=2)

    pipeline = DDPMPipeline(unet=backbone.unet_on(torch_device), scheduler=sampling_scheduler(backbone, scheduler))
    pipeline.set_progress_bar_config(disable=True)
    paths = [out_dir / SAMPLE_PATTERN.format(i) for i in range(n_samples)]
    missing = sum(not p.is_file() for p in paths)
    bar = tqdm(total=n_samples, initial=n_samples - missing, desc="sampling", unit="image", disable=not progress)
    with bar:
        for start in range(0, n_samples, batch_size):
            batch = range(start, min(start + batch_size, n_samples))
            todo = [i for i in batch if not paths[i].is_file()]
            if not todo:
                continue
            generators = [torch.Generator().manual_seed(sample_seed(random_state, i)) for i in batch]
            with torch.inference_mode():
                images = pipeline(batch_size=len(batch), generator=generators,
                                  num_inference_steps=int(num_inference_steps), output_type="np").images
            for i, image in zip(batch, images):
                if i in todo:
                    atomic_save_image(Image.fromarray(np.round(image * 255).astype(np.uint8)), paths[i])
            bar.update(len(todo))
    return paths


def _check_manifest(out_dir, settings):
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        if any(Path(out_dir).glob(SAMPLE_PATTERN.replace("{:06d}", "*"))):
            raise ValueError(f"{out_dir} holds samples but no {MANIFEST}: it was not written by sample_images; "
                             "use another folder.")
        return
    recorded = json.loads(path.read_text())
    changed = {k: (recorded.get(k), v) for k, v in settings.items() if recorded.get(k) != v}
    if changed:
        details = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
        raise ValueError(f"{out_dir} holds samples drawn with other settings ({details}); resuming would mix "
                         "them. Use another folder or the same settings.")


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
