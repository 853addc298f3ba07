"""Peak memory of fitting the paper's default pipeline on N images at 256², vs the dense reference layout.

Paper defaults: ADM-256-shaped UNet, blocks 5,6,7,8,12, steps 50,150,250, 10 ensemble members.
Each configuration runs in a fresh subprocess, so its peak resident memory (``getrusage``) is its
own: model weights, UNet forward buffers, the compact features, the activation cache and the
classifier together. The reference implementation keeps dense float32 features (D values for
each of the 65,536 pixels of a 256² image); those bytes are computed here for the same N, never
allocated.

On a CPU the full-width ADM-256 (552.8 M parameters) takes seconds per step and image, so the
default run measures it on 1 image (feature bytes per image, peak with the 2.2 GB of weights) and
the N = 50 fit with a reduced-width UNet of the same blocks and resolutions;
``--full-width-images 50`` runs the full-width model on all 50 (150 UNet forwards: ~15 min on a
quiet 2-core CPU, ~35 min on a busy one). Each row names its model. The classifier's pixels per
image and epochs are capped: memory, not accuracy, is measured.

Examples
--------
    python benchmarks/memory.py                                       # ~5 min on 2 CPU cores
    python benchmarks/memory.py --full-width-images 50 --threads 2    # the target itself
    python benchmarks/memory.py --quick                               # seconds, tiny model
"""

import json
import subprocess
import sys
import time

import _common

NAME = "memory"
PAPER_BLOCKS = (5, 6, 7, 8, 12)
PAPER_STEPS = (50, 150, 250)
TARGET_BYTES = 6 * 10**9


def configurations(quick, device, full_width_images=1):
    base = dict(blocks=PAPER_BLOCKS, steps=PAPER_STEPS, n_estimators=10, max_epochs=1, batch_size=1,
                memory=None, device=device, split="labeled_pool")
    if quick:
        return [dict(base, base_channels=8, image_size=64, n_images=2, n_estimators=2,
                     max_pixels_per_image=50)]
    if device == "cuda":
        return [dict(base, base_channels=256, image_size=256, n_images=50, batch_size=8,
                     max_pixels_per_image=None, max_epochs=1)]
    return [
        dict(base, base_channels=256, image_size=256, n_images=full_width_images, max_pixels_per_image=1000),
        dict(base, base_channels=32, image_size=256, n_images=50, max_pixels_per_image=1000),
    ]


def worker(config):
    """Fit the pipeline for one configuration in this (fresh) process; return its measurements."""
    import torch

    from sklearn_ddpm import make_segmenter

    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    record = {"rss_start": _common.current_rss_bytes()}
    images, masks, source = _common.horse_data(config["split"], config["n_images"], config["image_size"])
    unet = _common.adm256_unet(config["base_channels"], image_size=config["image_size"])
    record["model"] = _common.describe_model(unet)
    record["rss_after_model"] = _common.current_rss_bytes()
    pipe = make_segmenter(unet, blocks=config["blocks"], steps=config["steps"], batch_size=config["batch_size"],
                          memory=config["memory"], n_estimators=config["n_estimators"],
                          max_epochs=config["max_epochs"], max_pixels_per_image=config["max_pixels_per_image"],
                          device=config["device"], random_state=0, progress=True)
    pipe.set_params(clf__patience=None)
    features, clf = pipe.named_steps["features"], pipe.named_steps["clf"]
    start = time.perf_counter()
    # Pipeline.fit runs exactly these two steps; done by hand to measure memory between them.
    compact = features.fit_transform(images)
    record["seconds_features"] = time.perf_counter() - start
    record["rss_after_features"] = _common.current_rss_bytes()
    start = time.perf_counter()
    clf.fit(compact, masks)
    record["seconds_classifier"] = time.perf_counter() - start
    record["rss_after_fit"] = _common.current_rss_bytes()
    height, width = config["image_size"], config["image_size"]
    n = config["n_images"]
    record.update(
        data=source,
        n_features=int(features.n_features_out_),
        feature_bytes=int(compact.nbytes),
        feature_bytes_per_image=int(compact.nbytes // n),
        feature_dtype=str(compact.dtype),
        dense_reference_bytes=int(features.n_features_out_) * height * width * 4 * n,
        training_pixels=int(clf.n_training_pixels_),
        peak_rss=_common.peak_rss_bytes(),
    )
    if config["device"] == "cuda":
        record["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return record


def run_in_subprocess(config, verbose=False):
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)],
                          stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker failed for {config}:\n{(proc.stderr or '')[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"]:
        print(json.dumps(worker(json.loads(argv[1]))))
        return None
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--full-width-images", type=int, default=1, metavar="N",
                   help="images for the full-width ADM-256 run on CPU (default: 1; 50 = the target itself)")
    args = p.parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    rows = []
    # The workers measure with these threads; setting them here too makes the record name them.
    with _common.torch_threads(args.threads):
        for config in configurations(args.quick, device, args.full_width_images):
            config["threads"] = args.threads
            result = run_in_subprocess(config, verbose=not args.quick)
            rows.append({**config, **result})
    return report(rows, device, args.quick, args.out)


def report(rows, device, quick, out):
    """Print the table and write the JSON record of measured ``rows`` (configuration + worker result)."""
    table = [{
        "model": f"ADM-256 w{r['base_channels']} ({r['model']['parameters_M']} M)",
        "N": r["n_images"],
        "D": r["n_features"],
        "MB/img": r["feature_bytes_per_image"] / 1e6,
        "features GB": r["feature_bytes"] / 1e9,
        "peak RSS GB": r["peak_rss"] / 1e9,
        "dense ref GB": r["dense_reference_bytes"] / 1e9,
        "s feat": r["seconds_features"],
        "s clf": r["seconds_classifier"],
    } for r in rows]
    summary = {}
    full = [r for r in rows if r["base_channels"] == 256]
    at50 = [r for r in rows if r["n_images"] == 50]
    if full:
        f = full[0]
        per_image = f["feature_bytes_per_image"]
        summary["full_width_feature_bytes_per_image"] = per_image
        summary["full_width_dense_reference_bytes_per_image"] = f["dense_reference_bytes"] // f["n_images"]
        summary["full_width_dense_reference_bytes_n50"] = f["dense_reference_bytes"] // f["n_images"] * 50
        if f["n_images"] < 50:
            # A projection, labelled as such: the measured peak plus the features of the images not
            # run (cache entries are views of the features: no extra bytes).
            summary["full_width_n50_peak_rss_projected"] = f["peak_rss"] + (50 - f["n_images"]) * per_image
    if at50:
        at50.sort(key=lambda r: -r["base_channels"])  # the full-width run, when there is one
        summary["n50_peak_rss_measured"] = at50[0]["peak_rss"]
        summary["n50_model"] = table[rows.index(at50[0])]["model"]
        summary["n50_target_met"] = at50[0]["peak_rss"] <= TARGET_BYTES
    _common.print_table(table, list(table[0]), title=f"memory ({device}; classifier capped: "
                        f"{rows[0]['max_pixels_per_image']} px/img, {rows[0]['max_epochs']} epoch)")
    for key, value in summary.items():
        print(f"{key}: {value / 1e9:.3f} GB" if isinstance(value, int) and not isinstance(value, bool) else f"{key}: {value}")
    return _common.write_json(NAME, {"device": device, "quick": quick, "target_bytes": TARGET_BYTES,
                                     "runs": rows, "table": table, "summary": summary}, out)


if __name__ == "__main__":
    main()
