"""``sklearn-ddpm reproduce``: the paper's Table 2 protocol from the command line."""

import sys

from .._segment_cli import add_batch_size_argument
from ..datasets._paper import PAPER_DATASETS


def register(subparsers):
    """Add the ``reproduce`` sub-command."""
    parser = subparsers.add_parser(
        "reproduce",
        help="run the paper's protocol (Table 2) on its datasets: mean ± std mIoU over seeds",
        description="Train the paper's ensembles on the reference datasets (datasets.tar.gz of "
                    "yandex-research/ddpm-segmentation) with the reference checkpoints, and print test mIoU "
                    "next to the paper's numbers.",
    )
    parser.add_argument("--datasets-root", required=True, help="folder holding <dataset>/real/{train,test}")
    parser.add_argument("--checkpoints", required=True,
                        help="folder with lsun_horse.pt, ffhq.pt, lsun_bedroom.pt, lsun_cat.pt (or diffusers "
                             "folders of those names)")
    parser.add_argument("--dataset", action="append", choices=sorted(PAPER_DATASETS), dest="datasets",
                        help="dataset to run (repeatable); default: every one found")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument("--max-epochs", type=int, default=100, help="classifier epochs (paper: up to 100)")
    parser.add_argument("--max-pixels-per-image", type=int, default=None,
                        help="subsample training pixels (default: all, as in the paper)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (feature extraction and ensembles)")
    parser.add_argument("--autocast", choices=["bfloat16", "float16"], default=None, help="UNet mixed precision on CUDA")
    add_batch_size_argument(parser)
    parser.add_argument("--n-train", type=int, default=None, help="override the reference's training image count")
    parser.add_argument("--n-test", type=int, default=None, help="override the reference's testing image count")
    parser.add_argument("--resolution", type=int, default=None,
                        help="square size images and masks are scored at (default: the reference's 256)")
    parser.add_argument("--output", default=None, help="also write the table to this .csv file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args):
    from ..utils._atomic import atomic_write, check_output_file
    from ._reproduce import reproduce

    if args.output:
        check_output_file(args.output, "--output")  # before the hours of training, not after them

    table = reproduce(
        args.datasets_root, args.checkpoints, datasets=args.datasets, seeds=tuple(args.seeds),
        n_estimators=args.n_estimators, classifier_params={"device": args.device, "max_epochs": args.max_epochs,
                           "max_pixels_per_image": args.max_pixels_per_image},
        transformer_params={"device": args.device, "autocast_dtype": args.autocast, "batch_size": args.batch_size},
        n_train=args.n_train, n_test=args.n_test, progress=not args.quiet,
        resolution="paper" if args.resolution is None else args.resolution,
    )
    shown = table.assign(ours=table.miou_mean.map("{:.1f}".format) + " ± " + table.miou_std.map("{:.1f}".format),
                         paper=table.paper_miou.map("{:.1f}".format) + " ± " + table.paper_std.map("{:.1f}".format))
    print(shown[["dataset", "n_train", "n_test", "ours", "paper", "seconds"]].to_string(index=False), file=sys.stdout)
    if args.output:
        with atomic_write(args.output, "w") as f:
            table.to_csv(f, index=False)
    return 0
