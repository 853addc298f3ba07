"""The ``sklearn-ddpm train-ddpm`` sub-command."""

import argparse
from pathlib import Path

from ._presets import PRESETS

_EPILOG = """\
examples:
  # train the 64x64 preset on every image of a folder, on the CPU, with one thread
  sklearn-ddpm train-ddpm photos/ runs/my_ddpm --preset 64 --steps 20000 --threads 1

  # only the files named in a list (one name per line, e.g. a training split)
  sklearn-ddpm train-ddpm images/ runs/horse --image-list train.txt --device cuda

Run the same command again after an interruption to continue from the last checkpoint
(or with a larger --steps to train further); add --export-only to just write the model of
the last checkpoint of an unfinished run.
"""


def read_image_list(list_file, image_dir):
    """Resolve the names in ``list_file`` (one per line, ``#`` comments) to files of ``image_dir``.

    A name may omit its extension when exactly one file of the folder has that stem.
    """
    image_dir = Path(image_dir)
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"Image list not found: {list_file}")
    by_stem = {}
    for p in image_dir.iterdir():
        if p.is_file():
            by_stem.setdefault(p.stem, []).append(p)
    files = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        path = image_dir / name
        if path.is_file():
            files.append(path)
        elif len(by_stem.get(name, [])) == 1:
            files.append(by_stem[name][0])
        else:
            raise FileNotFoundError(
                f"{list_file}:{lineno}: {name!r} is not a file (or a unique file stem) in {image_dir}."
            )
    if not files:
        raise ValueError(f"The image list {list_file} names no files.")
    return files


def _handler(args):
    from ._train import export_checkpoint, train_ddpm

    if args.export_only:
        info = export_checkpoint(args.out_dir, args.out_dir)
        if not args.quiet:
            print(f"Saved the EMA model of {info['checkpoint']} (step {info['step']}) to {args.out_dir}")
        return 0
    images = read_image_list(args.image_list, args.image_dir) if args.image_list else args.image_dir
    out = train_ddpm(
        images,
        args.out_dir,
        preset=args.preset,
        image_size=args.image_size,
        max_steps=args.steps,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        device=args.device,
        mixed_precision=args.mixed_precision,
        random_state=args.seed,
        progress=not args.quiet,
        num_threads=args.threads,
    )
    if not args.quiet:
        print(f"Saved the EMA model to {out}")
    return 0


def register(subparsers):
    """Add the ``train-ddpm`` sub-command to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "train-ddpm",
        help="train a small DDPM backbone on a folder of images (resumable)",
        description=(
            "Train an ADM-like diffusers UNet2DModel as a DDPM (linear betas 1e-4..0.02, 1000 "
            "steps, EMA weights) on the images of IMAGE_DIR, writing checkpoints and finally a "
            "DDPMPipeline folder to OUT_DIR."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of training images")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (checkpoints and final model)")
    p.add_argument("--preset", default="64", choices=sorted(PRESETS), help="model size (default: 64)")
    p.add_argument("--image-size", type=int, default=None, help="override the preset's resolution")
    p.add_argument("--steps", type=int, default=10_000, help="total optimizer steps (default: 10000)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="time budget: checkpoint, stop and export the model when it is spent (re-run to continue)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default: 2e-4)")
    p.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument(
        "--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"],
        help="autocast on CUDA (default: auto); CPU always trains in fp32",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=True,
        help="continue from the last checkpoint in OUT_DIR (default); --no-resume starts afresh",
    )
    p.add_argument("--image-list", metavar="FILE", default=None,
                   help="train only on the files named in FILE (one per line, extension optional)")
    p.add_argument("--export-only", action="store_true",
                   help="do not train: write the model of the last checkpoint in OUT_DIR (e.g. of an unfinished run)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_handler)
    return p
