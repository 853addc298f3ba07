"""The ``sklearn-ddpm`` command line.

Each concern of the package contributes its sub-commands through a ``register(subparsers)``
function in its own ``_cli`` module, so this file only assembles them, importing only the module
of the command being run.
"""

import argparse
import importlib
import sys

# What an interrupted command says when it has nothing more precise to say (args.interrupted_note).
_INTERRUPTED = "files already written are complete (each is written whole, under its final name only when done)."

# Every command: the module whose ``register`` adds it (with the others of that module), and its
# one-line help, shown by ``sklearn-ddpm --help`` without importing any module: those import torch,
# diffusers and scikit-learn, seconds that a --help should not cost. A test checks that the help
# here is the module's own.
_COMMANDS = {
    "train-ddpm": ("sklearn_ddpm.ddpm_training._cli", "train a small DDPM backbone on a folder of images (resumable)"),
    "convert": ("sklearn_ddpm.backbone._cli", "convert a guided-diffusion checkpoint (.pt) into a diffusers folder"),
    "blocks": ("sklearn_ddpm.backbone._cli", "list a backbone's decoder blocks with their channels and resolutions"),
    "fit": ("sklearn_ddpm._segment_cli", "fit a segmenter on a folder of images and a folder of masks"),
    "predict": ("sklearn_ddpm._segment_cli", "segment a folder of images with a fitted model"),
    "evaluate": ("sklearn_ddpm._segment_cli", "mIoU and per-class IoU of a fitted model on images with masks"),
    "reproduce": ("sklearn_ddpm.studies._cli",
                  "run the paper's protocol (Table 2) on its datasets: mean ± std mIoU over seeds"),
    "synthesize": ("sklearn_ddpm.synthetic._cli",
                   "sample images from a DDPM, pseudo-label them, train a network on them (DatasetDDPM)"),
}


def build_parser(for_argv=None):
    """Return the argument parser of ``sklearn-ddpm``.

    Parameters
    ----------
    for_argv : list of str, optional
        The arguments it will parse: only the module of the command they name is imported, and the
        other commands are listed by name and help. By default every command is built.
    """
    parser = argparse.ArgumentParser(
        prog="sklearn-ddpm",
        description="Label-efficient semantic segmentation with diffusion-model features.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {module for module, _ in _COMMANDS.values()} if for_argv is None else {
        _COMMANDS[a][0] for a in for_argv[:1] if a in _COMMANDS}
    wanted = {name for name, (module, _) in _COMMANDS.items() if module in modules}
    for name, (module_name, help_text) in _COMMANDS.items():
        if name in subparsers.choices:
            continue  # added by the register() of an earlier command's module
        missing = None
        if name in wanted:
            try:
                importlib.import_module(module_name).register(subparsers)
                continue
            except ModuleNotFoundError as exc:  # an optional dependency of that command
                missing = exc
        if missing is None:
            subparsers.add_parser(name, help=help_text, add_help=False)  # listed; built when it is run
        else:  # takes any arguments (no option prefix), and says what is missing
            stub = subparsers.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(func=_unavailable(name, missing))
    return parser


def _unavailable(command, exc):
    """The function of a command whose module could not be imported: it says why when run."""

    def run(args):
        raise ImportError(f"`sklearn-ddpm {command}` needs the module {exc.name!r}, which is not installed ({exc}).")

    return run


def main(argv=None):
    """Entry point of the ``sklearn-ddpm`` console script.

    Returns the exit status: 0, 2 for an error (one line naming the problem), 130 for Ctrl-C (one
    line saying what was saved, never a traceback).
    """
    args = None
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        # The command is the first argument: the top-level parser has no options but --help.
        parser = build_parser(for_argv=argv)
        args = parser.parse_args(argv)
        args.argv = argv  # to print the command that resumes
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
