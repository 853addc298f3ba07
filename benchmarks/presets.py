"""Seconds per optimizer step of ``train_ddpm`` for each UNet preset (the README's preset table).

For each preset, ``train_ddpm`` trains from scratch for ``--steps`` optimizer steps at the preset's
resolution and batch size (fp32 on the CPU; forward, backward, AdamW, EMA update, data sampling and
augmentation) on ``unlabeled`` Weizmann horse photos (never ``test``), and the record keeps the
training seconds it logs (``train_log.csv``, checkpointing and export excluded) divided by the
steps. The first step's one-off costs are included, so short runs slightly overstate s/step.

Examples
--------
    python benchmarks/presets.py --threads 1                       # presets 64, 128, 256
    python benchmarks/presets.py --threads 1 --presets 64 --steps 20
    python benchmarks/presets.py --quick                           # tiny preset, seconds
"""

import csv
import tempfile
from pathlib import Path

import _common

NAME = "presets"
DEFAULT_STEPS = {"64": 10, "128": 5, "256": 4, "tiny": 3}


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["64", "128", "256"], choices=["64", "128", "256", "tiny"])
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per preset (default: 10 / 5 / 4 for 64 / 128 / 256)")
    p.add_argument("--n-images", type=int, default=16, help="unlabeled photos to sample from (default: 16)")
    return p


def measure(preset, steps, images, device, work):
    """Train ``preset`` for ``steps`` steps in ``work``; return the row of the record."""
    from sklearn_ddpm.ddpm_training import get_preset, train_ddpm

    config = get_preset(preset)
    out = Path(work) / preset
    with _common.stopwatch(device) as clock:
        train_ddpm(images, out, preset=preset, max_steps=steps, checkpoint_every=steps, lr_warmup_steps=0,
                   device=device, progress=False, random_state=0)
    with open(out / "train_log.csv") as fh:
        last = list(csv.DictReader(fh))[-1]
    train_seconds = float(last["train_seconds"])
    import torch
    from diffusers import UNet2DModel

    params = sum(p.numel() for p in UNet2DModel(**config["unet"], sample_size=config["image_size"]).parameters())
    return {"preset": preset, "image_size": config["image_size"], "batch_size": config["batch_size"],
            "parameters_M": round(params / 1e6, 2), "steps": int(last["step"]), "train_seconds": train_seconds,
            "seconds_per_step": train_seconds / int(last["step"]),
            "wall_seconds_with_setup_and_export": clock["seconds"],
            "torch_threads": torch.get_num_threads()}


def main(argv=None):
    args = build_parser().parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    presets = ["tiny"] if args.quick else args.presets
    images, _, source = _common.horse_data("unlabeled", 4 if args.quick else args.n_images, with_masks=False)
    rows = []
    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory() as work:
        for preset in presets:
            steps = args.steps or DEFAULT_STEPS[preset]
            rows.append(measure(preset, steps, images, device, work))
            print(f"preset {preset}: {rows[-1]['seconds_per_step']:.2f} s/step over {steps} steps", flush=True)
    _common.print_table(rows, ["preset", "image_size", "batch_size", "parameters_M", "steps", "seconds_per_step"],
                        title=f"train_ddpm seconds per optimizer step ({device})")
    payload = {"device": device, "quick": args.quick, "data": source, "rows": rows}
    path = _common.write_json(NAME, payload, args.out, device)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
