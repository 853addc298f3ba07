"""The model card (a Markdown README) of an exported DDPM, generated from its training record.

One generator for the bundled backbone's ``MODEL_CARD.md`` (``scripts/export_backbone.py``) and
the ``README.md`` that every ``train-ddpm`` export gets, so both state the same facts the same way.
"""

import time
from pathlib import Path

from ..utils._devices import cpu_name


def _hardware(sessions):
    devices = sorted({s.get("device", "?") for s in sessions}) or ["cpu"]
    if devices != ["cpu"]:
        return ", ".join(devices)
    threads = sorted({s.get("threads", "?") for s in sessions})
    cpus = sorted({s["cpu"] for s in sessions if s.get("cpu")}) or [cpu_name()]
    return f"CPU ({', '.join(cpus)}), {', '.join(map(str, threads))} torch thread(s)"


def reproduce_command(record, image_dir="IMAGE_DIR", out_dir="OUT_DIR", extra=""):
    """The ``sklearn-ddpm train-ddpm`` command line that trains the model of ``record`` again."""
    hp = record["hparams"]
    autocast = sorted({s.get("autocast", "float32") for s in record.get("sessions", [])})
    return (f"sklearn-ddpm train-ddpm {image_dir} {out_dir}{extra} \\\n"
            f"    --preset {hp['preset']} --batch-size {hp['batch_size']} --lr {hp['lr']:g} --max-steps {record['step']} "
            f"--checkpoint-every 250 \\\n"
            f"    --threads 1 --device cpu --mixed-precision {'bf16' if 'bfloat16' in autocast else 'no'} "
            f"--seed {hp['random_state']}")


def model_card(record, *, n_bytes, dtype="fp32", title=None, data_text=None, reproduce=None, limitations=None):
    """A model card in Markdown for an exported ``train_ddpm`` model.

    Parameters
    ----------
    record : dict
        The export's ``train_info.json``: ``step``, ``train_seconds``, ``cpu_seconds``, ``hparams``,
        ``sessions``, ``n_params``, ``checkpoint``, and optionally ``n_images``, ``unet_kwargs``,
        ``torch``.
    n_bytes : int
        Size of the weights on disk.
    dtype : str, default="fp32"
        Storage precision of the weights, as the card names it.
    title, data_text, reproduce, limitations : str, optional
        The heading, the training-data cell and the two closing sections; by default those of a
        model a user trained with ``sklearn-ddpm train-ddpm``.

    Returns
    -------
    str

    Examples
    --------
    >>> from sklearn_ddpm.ddpm_training._card import model_card
    >>> record = {"step": 10, "train_seconds": 36.0, "cpu_seconds": 30.0, "n_params": 130000,
    ...           "checkpoint": "step-00000010.pt", "n_images": 5, "sessions": [{"device": "cpu", "threads": 1}],
    ...           "hparams": {"preset": "tiny", "image_size": 16, "batch_size": 2, "lr": 2e-4,
    ...                       "lr_warmup_steps": 200, "weight_decay": 0.0, "ema_decay": 0.9999, "random_state": 0}}
    >>> print(model_card(record, n_bytes=520000).splitlines()[0])
    # DDPM backbone trained with `sklearn-ddpm train-ddpm`
    """
    hp = record["hparams"]
    sessions = record.get("sessions", [])
    autocast = sorted({s.get("autocast", "float32") for s in sessions})
    cpu_text = f", autocast {'/'.join(autocast)}"
    if record.get("cpu_seconds"):
        cpu_text += f"; {record['cpu_seconds'] / 3600:.2f} CPU hours (process user + system time, `train_info.json`)"
    widths = (record.get("unet_kwargs") or {}).get("block_out_channels", "see unet/config.json")
    n_images = record.get("n_images")
    if data_text is None:
        data_text = (f"{n_images if n_images is not None else 'The'} images given to `sklearn-ddpm train-ddpm` "
                     "(add here what they show, where they come from and their licence)")
    if title is None:
        title = "DDPM backbone trained with `sklearn-ddpm train-ddpm`"
    if reproduce is None:
        reproduce = f"""```sh
{reproduce_command(record)}
```

`train-ddpm` is resumable: re-running the command after an interruption continues from the last checkpoint.
On the same hardware and thread count it reproduces the weights exactly."""
    if limitations is None:
        limitations = (f"Trained on {n_images if n_images is not None else 'its'} images at {hp['image_size']}x"
                       f"{hp['image_size']}: its features describe images like those. This card does not report "
                       "segmentation accuracy: measure it with `sklearn-ddpm evaluate` on labelled images the "
                       "segmenter was not fitted on.")
    return f"""# {title}

An unconditional DDPM (diffusers `UNet2DModel`, ε-prediction) whose decoder activations serve as pixel
features for label-efficient segmentation (Baranchuk et al., ICLR 2022). These are the EMA weights,
stored as {dtype} safetensors ({n_bytes / 1e6:.1f} MB); load them in fp32 with
`UNet2DModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32)`.

| | |
|---|---|
| training data | {data_text} |
| preset | `{hp['preset']}` ({hp['image_size']}x{hp['image_size']}, ADM-like, widths {tuple(widths) if isinstance(widths, list) else widths}, {record['n_params'] / 1e6:.2f} M parameters) |
| noise schedule | linear betas 1e-4..0.02, 1000 steps (`scheduler/`) |
| optimizer | AdamW, lr {hp['lr']:g} (linear warm-up {hp['lr_warmup_steps']} steps), weight decay {hp['weight_decay']:g}, grad-norm clip 1, batch {hp['batch_size']} |
| EMA | diffusers `EMAModel`, max decay {hp['ema_decay']}, warm-up (inv_gamma 1, power 2/3) |
| augmentation | random crops (>= 60 % of the area, aspect jitter <= 4/3) resized to the square input, horizontal flips |
| steps | {record['step']} ({record['step'] * hp['batch_size']} samples seen) |
| training time | {record['train_seconds'] / 3600:.2f} h of training loop (wall) on {_hardware(sessions)}{cpu_text}; torch {record.get('torch', '?')} |
| seed | {hp['random_state']} |
| exported | {time.strftime('%Y-%m-%d %H:%M %Z')} from `{Path(record['checkpoint']).name}` |

## Reproduce
{reproduce}

## Limitations
{limitations}
"""
