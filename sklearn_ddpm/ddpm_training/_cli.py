"""The ``sklearn-ddpm train-ddpm`` sub-command."""

import argparse
import json
import shlex
from pathlib import Path

from ._presets import PRESETS

_EPILOG = """\
examples:
  # train the 64x64 preset on every image of a folder, on the CPU, with one thread
  sklearn-ddpm train-ddpm photos/ runs/my_ddpm --preset 64 --max-steps 20000 --threads 1

  # only the files named in a list (one name per line, e.g. a training split)
  sklearn-ddpm train-ddpm images/ runs/horse --image-list train.txt --device cuda

  # data-parallel on 4 GPUs of this machine; --batch-size is the global batch (8 per GPU here)
  torchrun --nproc_per_node 4 -m sklearn_ddpm.cli train-ddpm photos/ runs/my_ddpm \
      --device cuda --batch-size 32 --max-steps 20000

Ctrl-C stops at the next step: that step is checkpointed and exported, and the command to
continue is printed. Run the same command again after an interruption (or after --max-minutes
ended a session) to continue from the last checkpoint, or with a larger --max-steps to train
further; add --export-only to just write the model of the last checkpoint of an unfinished run.
OUT_DIR gets the model with train_info.json (the record of the exported step) and README.md (its
model card).
"""


class _RenamedToMaxSteps(argparse.Action):
    """``--steps``: the optimizer-step count used to be called so; refuse it with the new name.

    Kept (hidden) because ``fit --steps`` means diffusion timesteps: a silent removal would leave
    an old command with a bare "unrecognized arguments" and no hint.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} was renamed --max-steps (the total number of optimizer steps); "
            f"--steps of `fit` means diffusion timesteps."
        )


def _handler(args):
    from ..datasets._folders import list_images, read_image_list
    from ..utils._atomic import ensure_directory
    from ._distributed import is_main_process
    from ._export import export_run
    from ._train import TrainDDPMInterrupted, train_ddpm

    # Under torchrun every rank runs this; one of them speaks and writes.
    quiet = args.quiet or not is_main_process()
    if is_main_process():
        ensure_directory(args.out_dir, "OUT_DIR")  # before the images are read, not at the first checkpoint
    # A Ctrl-C before the first step (or a second one): the checkpoints written are whole.
    args.interrupted_note = (f"the checkpoints in {args.out_dir} are intact; continue with: "
                             f"{resume_command(args.argv)}")
    if args.export_only:
        if not is_main_process():
            return 0
        info = export_run(args.out_dir)
        if not quiet:
            print(f"Saved the EMA model of {info['checkpoint']} (step {info['step']}) to {args.out_dir}")
        return 0
    images = args.image_dir
    if args.image_list:
        images = list_images(args.image_dir, only=read_image_list(args.image_list))
    try:
        out = train_ddpm(
            images,
            args.out_dir,
            preset=args.preset,
            image_size=args.image_size,
            max_steps=args.max_steps,
            max_minutes=args.max_minutes,
            batch_size=args.batch_size,
            lr=args.lr,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoints=args.keep_checkpoints,
            resume=args.resume,
            device=args.device,
            mixed_precision=args.mixed_precision,
            random_state=args.seed,
            progress=not quiet,
            num_threads=args.threads,
        )
    except TrainDDPMInterrupted as exc:
        raise KeyboardInterrupt(f"{exc}; resume with: {resume_command(args.argv)}") from None
    if not quiet:
        step = json.loads((Path(out) / "train_info.json").read_text())["step"]
        if step < args.max_steps:  # only the time budget stops a run early without an error
            print(f"Time budget of {args.max_minutes:g} min spent at step {step} of {args.max_steps}: checkpoint and "
                  f"model (train_info.json, README.md) of that step saved to {out}; continue with: "
                  f"{resume_command(args.argv)}")
        else:
            print(f"Saved the EMA model of step {step} to {out} (model card: {Path(out) / 'README.md'})")
    return 0


def resume_command(argv):
    """The command line that continues the run of ``argv``: the same one, with ``--resume``."""
    kept = [a for a in argv if a not in ("--resume", "--no-resume")]
    return shlex.join(["sklearn-ddpm", *kept, "--resume"])


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
    p.add_argument("--max-steps", type=int, default=10_000, metavar="N",
                   help="total optimizer steps, counting those of earlier runs (default: 10000)")
    p.add_argument("--steps", nargs="?", action=_RenamedToMaxSteps, help=argparse.SUPPRESS)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="time budget: checkpoint, stop and export the model when it is spent (re-run to continue)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per step over all processes under torchrun (default: the preset's)")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default: 2e-4)")
    p.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--keep-checkpoints", type=int, default=2, metavar="N",
                   help="how many of the newest checkpoints to keep (default: 2; more to score snapshots)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument(
        "--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"],
        help="autocast of the UNet (default: auto = bf16 on CUDA where supported, else fp16; bf16 on CPUs "
             "with AVX512-BF16/AMX, else fp32); no = fp32; weights and checkpoints are fp32 either way",
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
