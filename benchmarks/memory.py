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
    python benchmarks/memory.py --real --cache-dir DIR --threads 2    # the paper's classifier settings

``--real`` measures the paper's *classifier* settings instead of the capped ones: full width, N = 50
at 256², every labelled pixel (3.28 M), ``max_epochs=100`` with the reference's early stop
(``patience=50`` iterations from epoch 4 on), and an RSS sample every 0.5 s, reported per epoch.
On a CPU an epoch over 3.28 M pixels is ~51,000 batches (about an hour), so ``--epoch-batches K``
runs the first K batches of each epoch: a sampler over the first K x 64 positions of every member's
permutation of *all* pixels, so each epoch still draws the full orders; only skorch's per-batch
history entries are fewer (the record gives their measured bytes per batch). ``--cache-dir`` reads
the activations from (and writes them to) a disk cache that keeps nothing in memory, so a re-run
skips the UNet; ``--distinct-images k`` cycles the first k images (and their own masks) to make the
N entries when the CPU had time for only k full-width forwards.
"""

import json
import subprocess
import sys
import threading
import time

import _common

NAME = "memory"
PAPER_BLOCKS = (5, 6, 7, 8, 12)
PAPER_STEPS = (50, 150, 250)
TARGET_BYTES = 6 * 10**9
DEFAULTS_TARGET_BYTES = 4 * 10**9


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


def real_configuration(args):
    """The paper's classifier settings (all pixels, reference epochs and early stop), full width, N = 50."""
    quick = args.quick
    return dict(blocks=PAPER_BLOCKS, steps=PAPER_STEPS, n_estimators=2 if quick else 10,
                max_epochs=6 if quick else 100, patience=2 if quick else 50, batch_size=1, device="cpu", split="labeled_pool", memory=None,
                base_channels=8 if quick else 256, image_size=64 if quick else 256, n_images=2 if quick else 50,
                max_pixels_per_image=None, distinct_images=args.distinct_images,
                epoch_batches=args.epoch_batches or (5 if quick else None), cache_dir=args.cache_dir and str(args.cache_dir))


class RssSampler(threading.Thread):
    """Resident memory every ``interval`` seconds, as ``(seconds since start, bytes)`` pairs."""

    def __init__(self, interval=0.5):
        super().__init__(daemon=True)
        self.interval, self.samples, self.start_time = interval, [], time.perf_counter()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.samples.append((time.perf_counter() - self.start_time, _common.current_rss_bytes()))

    def stop(self):
        self._stop_event.set()
        self.join()
        return self.samples


def per_epoch_peaks(samples, fit_start, durations):
    """Largest sampled RSS within each epoch, the epochs placed by skorch's ``dur`` from ``fit_start``."""
    peaks, start = [], fit_start
    for duration in durations:
        inside = [rss for t, rss in samples if start <= t < start + duration]
        peaks.append(max(inside) if inside else None)
        start += duration
    return peaks


def defaults_worker(config):
    """``DDPMFeatureTransformer(unet).fit_transform(images)`` with every parameter at its default."""
    import torch

    from sklearn_ddpm import DDPMFeatureTransformer

    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    images, _, source = _common.horse_data(config["split"], config["n_images"], config["image_size"])
    unet = _common.adm256_unet(config["base_channels"], image_size=config["image_size"])
    record = {"model": _common.describe_model(unet), "data": source, "rss_after_model": _common.current_rss_bytes()}
    transformer = DDPMFeatureTransformer(unet)
    start = time.perf_counter()
    compact = transformer.fit_transform(images)
    record.update(seconds_features=time.perf_counter() - start, feature_bytes=int(compact.nbytes),
                  batch_size=transformer.batch_size, forward_batch_size=transformer.forward_batch_size(),
                  peak_rss=_common.peak_rss_bytes())
    return record


def worker(config):
    """Fit the pipeline for one configuration in this (fresh) process; return its measurements."""
    import torch

    from sklearn_ddpm import make_segmenter

    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    record = {"rss_start": _common.current_rss_bytes()}
    n = config["n_images"]
    distinct = config.get("distinct_images") or n
    images, masks, source = _common.horse_data(config["split"], distinct, config["image_size"])
    if distinct < n:  # entries cycle the distinct images, each with its own mask
        images, masks = [images[i % distinct] for i in range(n)], [masks[i % distinct] for i in range(n)]
        source += f" cycled to {n} entries"
    memory = config["memory"]
    if config.get("cache_dir"):
        from sklearn_ddpm.features import ActivationCache

        # max_bytes=0: entries go to disk only, so the cache adds nothing to the resident memory
        memory = ActivationCache(max_bytes=0, directory=config["cache_dir"])
    unet = _common.adm256_unet(config["base_channels"], image_size=config["image_size"])
    record["model"] = _common.describe_model(unet)
    record["rss_after_model"] = _common.current_rss_bytes()
    pipe = make_segmenter(unet, blocks=config["blocks"], steps=config["steps"], batch_size=config["batch_size"],
                          memory=memory, n_estimators=config["n_estimators"],
                          max_epochs=config["max_epochs"], max_pixels_per_image=config["max_pixels_per_image"],
                          max_pixels_per_class=config.get("max_pixels_per_class"),
                          device=config["device"], random_state=0, progress=True)
    pipe.set_params(clf__patience=config.get("patience"))
    if config.get("epoch_batches"):
        pipe.set_params(clf__iterator_train__sampler=range(config["epoch_batches"] * pipe[-1].batch_size))
    features, clf = pipe.named_steps["features"], pipe.named_steps["clf"]
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    # Pipeline.fit runs exactly these two steps; done by hand to measure memory between them.
    compact = features.fit_transform(images)
    record["seconds_features"] = time.perf_counter() - start
    record["rss_after_features"] = _common.current_rss_bytes()
    start = time.perf_counter()
    fit_start = start - sampler.start_time
    clf.fit(compact, masks)
    record["seconds_classifier"] = time.perf_counter() - start
    record["rss_after_fit"] = _common.current_rss_bytes()
    samples = sampler.stop()
    history = clf.net_.history
    # the epoch that the early stop ends (skorch's KeyboardInterrupt) records no "dur": it lasted to the end
    durations = [float(epoch["dur"]) for epoch in history[:-1]]
    durations.append(record["seconds_classifier"] - sum(durations))
    record.update(
        epochs_run=len(history),
        batches_per_epoch=[len(epoch["batches"]) for epoch in history],
        stop_epochs=clf.stop_epochs_,
        n_iter=int(clf.n_iter_),
        history_bytes_per_batch=_history_bytes_per_batch(history),
        peak_rss_sampled_features=max([rss for t, rss in samples if t < fit_start], default=None),
        peak_rss_sampled_per_epoch=per_epoch_peaks(samples, fit_start, durations),
    )
    height, width = config["image_size"], config["image_size"]
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


def _history_bytes_per_batch(history):
    """Bytes one training batch adds to skorch's history: its dict, its values and its list slot."""
    entry = history[0]["batches"][0]
    return sys.getsizeof(entry) + sum(sys.getsizeof(value) for value in entry.values()) + 8


def run_in_subprocess(config, verbose=False):
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)],
                          stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker failed for {config}:\n{(proc.stderr or '')[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"]:
        config = json.loads(argv[1])
        print(json.dumps((defaults_worker if config.get("defaults") else worker)(config)))
        return None
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--full-width-images", type=int, default=1, metavar="N",
                   help="images for the full-width ADM-256 run on CPU (default: 1; 50 = the target itself)")
    p.add_argument("--real", action="store_true",
                   help="the paper's classifier settings: all pixels, 100 epochs, reference early stop (CPU)")
    p.add_argument("--epoch-batches", type=int, default=None, metavar="K",
                   help="with --real: train the first K batches of each epoch (default: whole epochs)")
    p.add_argument("--distinct-images", type=int, default=None, metavar="k",
                   help="with --real: cycle the first k images (with their masks) to make the N entries")
    p.add_argument("--cache-dir", default=None, help="with --real: disk-only activation cache directory")
    p.add_argument("--defaults", action="store_true",
                   help="peak RSS of DDPMFeatureTransformer(full-width ADM-256) with every parameter default, "
                        "4 images at 256² (the safe-default target: <= 4 GB)")
    args = p.parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    if args.defaults:
        config = dict(defaults=True, split="labeled_pool", threads=args.threads, n_images=2 if args.quick else 4,
                      base_channels=8 if args.quick else 256, image_size=64 if args.quick else 256)
        with _common.torch_threads(args.threads):
            row = {**config, **run_in_subprocess(config, verbose=not args.quick)}
        print(f"defaults: {row['n_images']} images, forward_batch_size {row['forward_batch_size']}, "
              f"peak RSS {row['peak_rss'] / 1e9:.3f} GB (target {DEFAULTS_TARGET_BYTES / 1e9:.0f} GB)")
        return _common.write_json(NAME + ("_defaults" if not args.quick else ""),
                                  {"device": device, "quick": args.quick, "target_bytes": DEFAULTS_TARGET_BYTES,
                                   "target_met": row["peak_rss"] <= DEFAULTS_TARGET_BYTES, "run": row}, args.out)
    if args.real:
        config = dict(real_configuration(args), device=device, threads=args.threads)
        with _common.torch_threads(args.threads):
            rows = [{**config, **run_in_subprocess(config, verbose=not args.quick)}]
        return report(rows, device, args.quick, args.out, name=NAME + ("" if args.quick else "_real_settings"))
    rows = []
    # The workers measure with these threads; setting them here too makes the record name them.
    with _common.torch_threads(args.threads):
        for config in configurations(args.quick, device, args.full_width_images):
            config["threads"] = args.threads
            result = run_in_subprocess(config, verbose=not args.quick)
            rows.append({**config, **result})
    return report(rows, device, args.quick, args.out)


def report(rows, device, quick, out, name=NAME):
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
    first = rows[0]
    _common.print_table(table, list(table[0]), title=f"memory ({device}; classifier: "
                        f"{first['max_pixels_per_image'] or 'all'} px/img, max_epochs {first['max_epochs']}, "
                        f"patience {first.get('patience')}, epochs run {first.get('epochs_run')})")
    if first.get("peak_rss_sampled_per_epoch"):
        print("sampled peak RSS per epoch GB:",
              [None if v is None else round(v / 1e9, 3) for v in first["peak_rss_sampled_per_epoch"]])
    for key, value in summary.items():
        print(f"{key}: {value / 1e9:.3f} GB" if isinstance(value, int) and not isinstance(value, bool) else f"{key}: {value}")
    return _common.write_json(name, {"device": device, "quick": quick, "target_bytes": TARGET_BYTES,
                                     "runs": rows, "table": table, "summary": summary}, out)


if __name__ == "__main__":
    main()
