"""``sklearn-ddpm synthesize``: DDPM samples, their pseudo-labels and a network trained on them."""

import argparse
import inspect
import sys

_EPILOG = """\
examples:
  # 1,000 samples of the bundled horse DDPM with 50 DDIM steps (rerun the same command to resume)
  sklearn-ddpm synthesize samples/ --n-samples 1000

  # ... labelled by a segmenter from `sklearn-ddpm fit`, the 10% most uncertain dropped
  sklearn-ddpm synthesize samples/ --n-samples 1000 --label-with seg.skddpm

  # ... and a segmentation network trained on the kept pairs (DatasetDDPM), in the safe model format
  sklearn-ddpm synthesize samples/ --n-samples 1000 --label-with seg.skddpm --train-network net.skddpm

Outputs: OUT_DIR/sample_NNNNNN.png and OUT_DIR/samples.json (the sampling settings; a resumed run
must use the same ones); with --label-with, OUT_DIR/pseudo_labels/sample_NNNNNN.png (class indices)
and pseudo_labels.json (each sample's uncertainty and whether it is kept). Every file is written
atomically. The network predicts from Python: sklearn_ddpm.io.load_model("net.skddpm").predict(images).
Security: model files are written in the safe format (safetensors + JSON: loading runs no code from
the file); a joblib/pickle --label-with file runs any code it holds, so it needs --trust-pickle.
"""


def register(subparsers):
    """Add the ``synthesize`` sub-command."""
    from ._network import SegmentationNetworkClassifier
    from ._pseudo_labels import DEFAULT_DROP_FRACTION
    from ._sampling import SCHEDULERS, sample_images

    # The defaults shown are the functions' own, decided there.
    sampling = {name: p.default for name, p in inspect.signature(sample_images).parameters.items()}
    epochs = inspect.signature(SegmentationNetworkClassifier).parameters["max_epochs"].default

    parser = subparsers.add_parser(
        "synthesize", help="sample images from a DDPM, pseudo-label them, train a network on them (DatasetDDPM)",
        description="Draw images from a DDPM into OUT_DIR (resumable); optionally label them with a fitted "
                    "segmenter, drop the most uncertain, and train a segmentation network on the rest.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder of the samples")
    parser.add_argument("--n-samples", type=int, required=True, metavar="N", help="samples the folder should hold")
    parser.add_argument("--model", default=None, metavar="BACKBONE",
                        help="diffusers model folder, guided-diffusion .pt or hub id (default: bundled horse DDPM)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=sampling["scheduler"],
                        help=f"ddim: deterministic DDIM; ddpm: ancestral sampling (default: {sampling['scheduler']})")
    parser.add_argument("--inference-steps", type=int, default=sampling["num_inference_steps"], metavar="N",
                        help=f"denoising steps (default: {sampling['num_inference_steps']}; the training chain is "
                             "1000 with --scheduler ddpm)")
    parser.add_argument("--batch-size", type=int, default=sampling["batch_size"], metavar="N",
                        help=f"samples per forward pass (default: {sampling['batch_size']})")
    parser.add_argument("--seed", type=int, default=sampling["random_state"], metavar="N",
                        help=f"random seed (default: {sampling['random_state']})")
    labels = parser.add_argument_group("pseudo-labels")
    labels.add_argument("--label-with", default=None, metavar="MODEL", help="a segmenter saved by `sklearn-ddpm fit`")
    labels.add_argument("--trust-pickle", action="store_true",
                        help="also load a joblib/pickle --label-with file; loading a pickle runs any code it holds: "
                             "only for files you trust")
    labels.add_argument("--drop-fraction", type=float, default=DEFAULT_DROP_FRACTION, metavar="F",
                        help=f"share of the samples dropped as most uncertain (default: {DEFAULT_DROP_FRACTION}, "
                             "the reference's)")
    labels.add_argument("--drop-most-certain", type=int, default=0, metavar="N",
                        help="take N of the dropped samples from the most certain end (the reference code: 30)")
    network = parser.add_argument_group("segmentation network (DatasetDDPM)")
    network.add_argument("--train-network", default=None, metavar="FILE",
                         help="train a network on the kept pairs and save it here (safe format, .skddpm by "
                              "convention); needs --label-with")
    network.add_argument("--network-epochs", type=int, default=epochs, metavar="N", help=f"epochs (default: {epochs})")
    network.add_argument("--network-size", type=int, default=None, metavar="N",
                         help="square input size of the network (default: the DDPM's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--threads", type=int, metavar="N", default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries")
    parser.set_defaults(func=_run)
    return parser


def _run(args):
    if args.train_network and not args.label_with:
        raise ValueError("--train-network needs --label-with: the network trains on the pseudo-labelled samples.")
    from ..utils._atomic import check_output_file, ensure_directory

    # Before sampling, not after it.
    ensure_directory(args.out_dir, "OUT_DIR")
    if args.train_network:
        check_output_file(args.train_network, "--train-network")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    from ..backbone import load_backbone
    from ..segmenter import load_segmenter
    from ._sampling import sample_images

    # Before sampling: a model file that cannot (or may not) be loaded fails at once.
    segmenter = load_segmenter(args.label_with, device=args.device, trust_pickle=args.trust_pickle) \
        if args.label_with else None

    say = (lambda *a: None) if args.quiet else (lambda message: print(message, file=sys.stdout))
    backbone = load_backbone(args.model)
    paths = sample_images(args.out_dir, args.n_samples, backbone, scheduler=args.scheduler,
                          num_inference_steps=args.inference_steps, batch_size=args.batch_size, device=args.device,
                          random_state=args.seed, progress=not args.quiet)
    say(f"{len(paths)} samples in {args.out_dir}.")
    if not args.label_with:
        return 0
    from ._pseudo_labels import label_samples

    pseudo = label_samples(segmenter, args.out_dir, drop_fraction=args.drop_fraction,
                           drop_most_certain=args.drop_most_certain, progress=not args.quiet)
    say(f"Pseudo-labels in {pseudo.record.parent}: {int(pseudo.kept.sum())} kept, {int((~pseudo.kept).sum())} "
        f"dropped as most uncertain (record: {pseudo.record}).")
    if not args.train_network:
        return 0
    from ..io import save_model
    from ._network import SegmentationNetworkClassifier

    images, masks = pseudo.load(kept_only=True)
    net = SegmentationNetworkClassifier(image_size=args.network_size or max(backbone.image_size),
                                        max_epochs=args.network_epochs, n_classes=int(max(segmenter[-1].classes_)) + 1,
                                        device=args.device, random_state=args.seed, verbose=0 if args.quiet else 1)
    save_model(net.fit(images, masks), args.train_network)
    say(f"Wrote the segmentation network ({net.n_parameters_:,} parameters, {len(images)} training pairs) to "
        f"{args.train_network}.")
    return 0
