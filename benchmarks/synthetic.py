"""Real or synthetic training data (the paper's Table 3) on the Weizmann horses.

Bundled horse DDPM; n = 20 real masks (the first 20 of ``labeled_pool``); N samples drawn from the
DDPM with DDIM; the test split (100 horses, original sizes) scored once per seed::

    python benchmarks/synthetic.py [--quick] [--threads 1] [--n-samples 320] [--inference-steps 25]

Rows: DDPM on real (the pixel-MLP ensemble on the 20 real masks), DDPM on synthetic (the same
ensemble trained on the kept pseudo-labelled samples), DatasetDDPM (a UNet segmentation network
trained on them). Every setting is fixed before any test image is scored (no selection on test).
The samples and each seed's rows are cached under ``--cache-dir``: a rerun draws no sample again
and skips the seeds it has finished. Also measured in the same run: prediction throughput of the
network against the DDPM-feature pipeline (feature extraction included), and the seconds per
sample of the sampler (a probe batch with the same settings in a scratch folder).
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np

import _common

FIGURE = _common.REPO_ROOT / "docs" / "images" / "synthetic_samples.png"


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--n-samples", type=int, default=320, help="samples drawn from the DDPM (N)")
    p.add_argument("--inference-steps", type=int, default=25, help="DDIM steps per sample")
    p.add_argument("--sample-batch-size", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n-estimators", type=int, default=5, help="members of the pixel-MLP ensembles")
    p.add_argument("--max-pixels-per-image", type=int, default=1000, help="ensemble training pixels per real image")
    p.add_argument("--synthetic-pixels", type=int, default=20000,
                   help="ensemble training pixels in all, spread over the kept samples (DDPM on synthetic)")
    p.add_argument("--max-epochs", type=int, default=100, help="ensemble epochs at most (the classifier's default)")
    p.add_argument("--network-epochs", type=int, default=5)
    p.add_argument("--probe-samples", type=int, default=16, help="samples of the timing probe (0: none)")
    p.add_argument("--cache-dir", type=Path, default=_common.REPO_ROOT / ".cache" / "synthetic")
    p.add_argument("--figure", type=Path, default=FIGURE, help="grid of samples with pseudo-labels (PNG)")
    args = p.parse_args(argv)
    device, note = _common.resolve_device(args.device)
    device = device or "cpu"
    if args.quick:
        args.n_labeled, args.n_test, args.n_samples, args.inference_steps, args.seeds = 3, 3, 6, 2, 1
        args.n_estimators, args.max_pixels_per_image, args.synthetic_pixels, args.network_epochs = 2, 200, 600, 1
        args.probe_samples, args.max_epochs = 2, 2

    from sklearn_ddpm import ActivationCache, MLPEnsembleClassifier
    from sklearn_ddpm.backbone import load_backbone
    from sklearn_ddpm.studies import SYNTHETIC_METHODS, synthetic_data_study
    from sklearn_ddpm.synthetic import PseudoLabels, SegmentationNetworkClassifier, sample_images
    from sklearn_ddpm.utils._atomic import atomic_write

    load_start = os.getloadavg()
    backbone = load_backbone(None)
    if args.quick:  # a tiny random ε-prediction UNet: seconds, not hours
        from sklearn_ddpm.backbone import Backbone, tiny_unet

        backbone = Backbone(tiny_unet(out_channels=3), source="tiny_unet")
    size = max(backbone.image_size)
    sampling = dict(scheduler="ddim", num_inference_steps=args.inference_steps, batch_size=args.sample_batch_size,
                    device=device, random_state=0)
    cache = args.cache_dir / ("quick" if args.quick else "weizmann_horse")
    sample_dir = cache / "samples"
    with _common.torch_threads(args.threads):
        pool, pool_masks, source = _common.horse_data("labeled_pool", args.n_labeled)
        test, test_masks, test_source = _common.horse_data("test", args.n_test)
        probe = None
        if args.probe_samples:
            scratch = cache / "probe"
            shutil.rmtree(scratch, ignore_errors=True)
            with _common.stopwatch(device) as t_probe:
                sample_images(scratch, args.probe_samples, backbone, progress=False,
                              **{**sampling, "batch_size": min(args.probe_samples, args.sample_batch_size)})
            shutil.rmtree(scratch, ignore_errors=True)
            probe = {"samples": args.probe_samples, "seconds": t_probe["seconds"],
                     "seconds_per_sample": t_probe["seconds"] / args.probe_samples}
        with _common.stopwatch(device) as t_sampling:
            sample_images(sample_dir, args.n_samples, backbone, progress=not args.quick, **sampling)
        classifier = MLPEnsembleClassifier(n_estimators=args.n_estimators, max_pixels_per_image=args.max_pixels_per_image,
                                           max_epochs=args.max_epochs, device=device)
        memory = ActivationCache(max_bytes=4 * 2**30)  # shared by the seeds' calls: features once per image
        rows = []
        for seed in range(args.seeds):
            done = cache / f"rows_seed{seed}.json"
            if done.is_file():
                rows += json.loads(done.read_text())
                print(f"seed {seed}: rows from {done}", flush=True)
                continue
            n_kept = args.n_samples - int(args.n_samples * 0.1)
            synthetic = MLPEnsembleClassifier(n_estimators=args.n_estimators, max_epochs=args.max_epochs, device=device,
                                              max_pixels_per_image=max(1, args.synthetic_pixels // n_kept))
            network = SegmentationNetworkClassifier(image_size=size, block_out_channels=(16, 32, 64, 64),
                                                    max_epochs=args.network_epochs, n_classes=2, device=device)
            runs = synthetic_data_study(
                pool, pool_masks, test, test_masks, sample_dir=sample_dir, n_samples=args.n_samples, seeds=(seed,),
                model=backbone, steps=(50, 150, 250), classifier=classifier, synthetic_classifier=synthetic,
                network=network, transformer_params={"memory": memory, "device": device}, sampling_params=sampling,
                n_classes=2, dataset="Horse (Weizmann)", progress=not args.quick)
            seed_rows = json.loads(runs.to_json(orient="records"))
            with atomic_write(done, "w") as f:
                json.dump(seed_rows, f)
            rows += seed_rows
            for row in seed_rows:
                print(f"seed {seed} {row['method']:>17}: mIoU {100 * row['miou']:.1f}, fit {row['fit_seconds']:.0f} s, "
                      f"{row['images_per_second']:.2f} test images/s", flush=True)
    summary = []
    for method in SYNTHETIC_METHODS:
        mine = [r for r in rows if r["method"] == method]
        scores = [100 * r["miou"] for r in mine]
        mean, std = _common.mean_sample_std(scores)
        summary.append({"method": method, "miou_mean": mean, "miou_std": std, "scores": scores,
                        "n_train_images": mine[0]["n_train_images"],
                        "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in mine])),
                        "images_per_second": [r["images_per_second"] for r in mine]})
    speed = {r["method"]: r["images_per_second"] for r in summary}
    ratios = [net / ddpm for net, ddpm in zip(speed["DatasetDDPM"], speed["DDPM on real"])]
    pseudo = PseudoLabels.read(sample_dir / "pseudo_labels_seed0")
    figure = _sample_grid(pseudo, args.figure) if not args.quick else None
    payload = {
        "data": {"train": source, "test": test_source, "n_labeled": args.n_labeled, "n_test": len(test)},
        "backbone": repr(backbone),
        "samples": {"n": args.n_samples, "folder": str(sample_dir), **sampling,
                    "seconds_this_run": t_sampling["seconds"],
                    "note": "drawn once, reused by every seed; seconds_this_run is ~0 when a previous run drew them"},
        "sampling_probe": probe,
        "filter": {"drop_fraction": 0.1, "drop_most_certain": 0,
                   "n_kept_per_seed": [r["n_train_images"] for r in rows if r["method"] == "DatasetDDPM"]},
        "settings": {
            "features": {"blocks": "auto", "steps": [50, 150, 250]},
            "ensemble": {"n_estimators": args.n_estimators, "max_pixels_per_image_real": args.max_pixels_per_image,
                         "training_pixels_synthetic": args.synthetic_pixels, "max_epochs": args.max_epochs, "other": "MLPEnsembleClassifier defaults"},
            "network": {"architecture": "diffusers UNet2DModel, block_out_channels (16, 32, 64, 64), 1 layer per "
                                        "block, no attention, timestep 0", "image_size": size,
                        "epochs": args.network_epochs, "batch_size": 8, "lr": 1e-3, "hflip": True},
            "chosen": "fixed before any test image was scored (CPU budget), not tuned",
        },
        "device": device,
        "gpu_note": note,
        "seeds": args.seeds,
        "miou_std": _common.STD_NOTE,
        "rows": rows,
        "summary": summary,
        "throughput_ratio_network_vs_ddpm": {"per_seed": ratios, "mean": float(np.mean(ratios)),
                                             "what": "test images/s of DatasetDDPM's network over the DDPM-feature "
                                                     "pipeline (feature extraction + ensemble), same run"},
        "figure": str(figure.relative_to(_common.REPO_ROOT)) if figure else None,
        "load_average_1min_start": round(load_start[0], 2),
    }
    path = _common.write_json("synthetic" + ("_quick" if args.quick else ""), payload, args.out, device=device)
    for row in summary:
        row["mIoU"] = _common.format_mean_std(row["scores"])
        row["images/s"] = float(np.mean(row["images_per_second"]))
    _common.print_table(summary, ["method", "mIoU", "n_train_images", "fit_seconds_mean", "images/s"],
                        title=f"Weizmann horse test split ({test_source}), N = {args.n_samples} samples, "
                              f"{args.seeds} seeds")
    print(f"network / DDPM pipeline prediction speed: {np.mean(ratios):.1f}x; wrote {path}")
    return payload


def _sample_grid(pseudo, path, per_row=8):
    """Two rows of kept samples (lowest uncertainty first) and two of dropped ones, each with its overlay."""
    from PIL import Image, ImageDraw

    from sklearn_ddpm.datasets import read_image, read_mask
    from sklearn_ddpm.plotting import overlay

    order = np.argsort(pseudo.uncertainty, kind="stable")
    kept = [i for i in order if pseudo.kept[i]]
    dropped = [i for i in order[::-1] if not pseudo.kept[i]]
    # kept: spread over the kept range; dropped: the most uncertain
    picks = [kept[k] for k in np.linspace(0, len(kept) - 1, per_row).astype(int)] + dropped[:per_row]
    tiles = []
    for i in picks:
        image = read_image(pseudo.image_paths[i])
        tiles.append(np.concatenate([image, overlay(image, read_mask(pseudo.mask_paths[i]))[:image.shape[0],
                                                                                            :image.shape[1]]], 0))
    h, w = tiles[0].shape[:2]
    label_h = 14
    canvas = Image.new("RGB", (per_row * (w + 2), 2 * (h + label_h + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (i, tile) in enumerate(zip(picks, tiles)):
        row, col = divmod(k, per_row)
        x, y = col * (w + 2), row * (h + label_h + 2)
        canvas.paste(Image.fromarray(tile), (x, y + label_h))
        draw.text((x + 2, y + 1), f"{'kept' if pseudo.kept[i] else 'DROP'} {pseudo.uncertainty[i]:.2f}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path


if __name__ == "__main__":
    main()
