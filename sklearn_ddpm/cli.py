"""The ``sklearn-ddpm`` command line.

Each concern of the package contributes its sub-commands through a ``register(subparsers)``
function in its own ``_cli`` module, so this file only assembles them.
"""

import argparse
import importlib
import sys

# What an interrupted command says when it has nothing more precise to say (args.interrupted_note).
_INTERRUPTED = "files already written are complete (each is written whole, under its final name only when done)."

_COMMAND_MODULES = (
    "sklearn_ddpm.ddpm_training._cli",
    "sklearn_ddpm.backbone._cli",
    "sklearn_ddpm._segment_cli",
    "sklearn_ddpm.studies._cli",
    "sklearn_ddpm.synthetic._cli",
)


def build_parser():
    """Return the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="sklearn-ddpm",
        description="Label-efficient semantic segmentation with diffusion-model features.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None):
    """Entry point of the ``sklearn-ddpm`` console script.

    Returns the exit status: 0, 2 for an error (one line naming the problem), 130 for Ctrl-C (one
    line saying what was saved, never a traceback).
    """
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # to print the command that resumes
        try:
            return args.func(args) or 0
        except (ValueError, OSError, ImportError, RuntimeError) as exc:
            print(f"sklearn-ddpm {args.command}: error: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt as exc:
        command = f"sklearn-ddpm {args.command}" if args is not None else "sklearn-ddpm"
        # The exception's own words (e.g. train-ddpm's step and checkpoint), else the command's note.
        line = str(exc) or f"interrupted: {getattr(args, 'interrupted_note', None) or _INTERRUPTED}"
        # A new line first if a progress bar holds the terminal's current one.
        print(f"{chr(10) if sys.stderr.isatty() else ''}{command}: {line}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
