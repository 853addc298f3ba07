"""The ``sklearn-ddpm`` command line.

Each concern of the package contributes its sub-commands through a ``register(subparsers)``
function in its own ``_cli`` module, so this file only assembles them.
"""

import argparse
import importlib
import sys

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
    """Entry point of the ``sklearn-ddpm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        print(f"sklearn-ddpm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
