"""Refit latency of the labelling loop (issue 27, item 2): a new stroke -> an updated prediction.

An :class:`~sklearn_ddpm.interactive.InteractiveSegmenter` session holds Weizmann horses resized to
512 x 512 (``labeled_pool``). A simulated annotator paints brush strokes along the true classes
(one per class to start, then one per round, alternating the classes and moving over the
images). Every round times, on the CPU:

* ``stroke_to_prediction_s``: ``add_labels`` + ``fit`` + the prediction and uncertainty of the
  512² image just painted, as a GUI's live mode does after each stroke;
* split into ``fit_s`` (the ensemble's training: only it runs, the UNet features are cached) and
  ``predict_s`` (the members' probabilities, the guided filter and the Jensen-Shannon map).

The first extraction of the session's features (``extract_features``, the only UNet work) is
timed separately, and the UNet forward passes during the rounds are counted (0 expected). After
the rounds one more stroke's refit and prediction run under cProfile with a CPU-time clock
(``profile``: CPU seconds of the skorch steps, forward and backward passes, Adam, the pixel
gathering; of the projection, its upsampling, the hidden layers, the guided filter and the
Jensen-Shannon map). ``--mlp-batch-sizes 64 256`` measures one session per training batch in the
same run (``refit_batch.py`` measures what a batch costs in mIoU).

Backbones: the bundled horse DDPM (``model=None``, the package's default features) and a
full-width ADM-256-shaped random-init UNet (552.8 M parameters, the paper's blocks 5, 6, 7, 8, 12):
its timings are of the shape, not of a trained model's quality.

    python benchmarks/refit_latency.py --threads 1            # both backbones
    python benchmarks/refit_latency.py --threads 1 --backbones bundled --mlp-batch-sizes 64 256 --merge
    python benchmarks/refit_latency.py --quick                # seconds (smoke test)
"""

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

import _common


def strokes(mask, n, rng, brush=5, length=120):
    """``n`` brush strokes per round: each a horizontal run of up to ``length`` pixels, ``brush`` thick,
    inside one class of ``mask`` (classes alternate), starting at a random pixel of the eroded class."""
    from scipy import ndimage

    classes = [int(k) for k in np.unique(mask) if k != 255]
    out = []
    for s in range(n):
        k = classes[s % len(classes)]
        inside = ndimage.binary_erosion(mask == k, iterations=brush // 2 + 1)
        ys, xs = np.nonzero(inside if inside.any() else mask == k)
        j = rng.integers(len(ys))
        y, x = ys[j], xs[j]
        row = np.nonzero(inside[y] if inside.any() else mask[y] == k)[0]
        run = row[(row >= x) & (row < x + length)]
        stroke = np.full(mask.shape, 255, np.uint8)
        top, bottom = max(0, y - brush // 2), min(mask.shape[0], y + brush // 2 + 1)
        stroke[top:bottom, run] = k
        stroke[(stroke != 255) & (mask != k)] = 255  # never paint across the true boundary
        out.append(stroke)
    return out


class UNetCalls:
    """Counts UNet2DModel forward passes while the ``with`` block runs."""

    def __enter__(self):
        import torch
        from diffusers import UNet2DModel

        self.count = 0

        def hook(module, args):
            if isinstance(module, UNet2DModel):
                self.count += 1

        self._handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def measure(name, model, images, masks, rounds, seed, profiled=True, **params):
    import torch

    from sklearn_ddpm.interactive import InteractiveSegmenter

    rng = np.random.default_rng(seed)
    seg = InteractiveSegmenter(model, class_names=["background", "horse"], random_state=seed, **params)
    seg.add_images(images)
    start, cpu = time.perf_counter(), time.process_time()
    seg.extract_features()
    extraction, extraction_cpu = time.perf_counter() - start, time.process_time() - cpu
    # The first strokes: one per class on image 0, fitted once (not a refit).
    for stroke in strokes(masks[0], 2, rng):
        seg.add_labels(0, stroke)
    seg.fit()
    seg.predict_with_uncertainty(0)
    per_round = []
    with UNetCalls() as calls:
        for r in range(rounds):
            i = (r // 2) % len(images)  # two strokes per image, then the next image
            (stroke,) = strokes(masks[i], 1, rng) if r % 2 == 0 else strokes(masks[i], 2, rng)[1:]
            t0, c0 = time.perf_counter(), time.process_time()
            seg.add_labels(i, stroke)
            seg.fit()
            t1, c1 = time.perf_counter(), time.process_time()
            labels, _ = seg.predict_with_uncertainty(i)
            t2, c2 = time.perf_counter(), time.process_time()
            clf = seg.pipeline_[-1]
            truth = masks[i]
            per_round.append({
                "round": r + 1, "image": i, "labelled_pixels": seg.n_labelled_pixels,
                "training_pixels": int(clf.n_training_pixels_), "optimizer_steps": int(clf.n_iter_),
                "fit_s": t1 - t0, "predict_s": t2 - t1, "stroke_to_prediction_s": t2 - t0,
                # CPU seconds of this process: with one torch thread, the wall time on an idle core
                "fit_cpu_s": c1 - c0, "predict_cpu_s": c2 - c1, "stroke_to_prediction_cpu_s": c2 - c0,
                "pixel_accuracy_painted_image": float((labels == truth)[truth != 255].mean()),
            })
    profile = profile_round(seg, masks, rng, rounds) if profiled else None
    latencies = [r["stroke_to_prediction_s"] for r in per_round]
    return {
        "backbone": name, "image_size": list(images[0].shape[:2]), "n_images": len(images),
        "n_features": int(seg.pipeline_[0].n_features_out_), "steps": list(seg.pipeline_[0].steps_),
        "blocks": list(seg.pipeline_[0].blocks_), "n_estimators": seg.n_estimators, "max_epochs": seg.max_epochs,
        "mlp_batch_size": seg.mlp_batch_size, "torch_threads": torch.get_num_threads(),
        "first_extraction_s": extraction, "first_extraction_s_per_image": extraction / len(images),
        "first_extraction_cpu_s": extraction_cpu,
        "unet_forward_passes_during_refits": calls.count,
        "stroke_to_prediction_s_median": statistics.median(latencies),
        "stroke_to_prediction_s_max": max(latencies),
        "stroke_to_prediction_cpu_s_median": statistics.median(r["stroke_to_prediction_cpu_s"] for r in per_round),
        "fit_cpu_s_median": statistics.median(r["fit_cpu_s"] for r in per_round),
        "predict_cpu_s_median": statistics.median(r["predict_cpu_s"] for r in per_round),
        "fit_s_median": statistics.median(r["fit_s"] for r in per_round),
        "predict_s_median": statistics.median(r["predict_s"] for r in per_round),
        "rounds": per_round,
        "profile": profile,
    }


#: (part, file name ending, function): cumulative CPU seconds of these calls in one profiled refit and predict
PROFILE_PARTS = {
    "fit": [
        ("refit, all", "interactive/_session.py", "fit"),
        ("skorch epochs (steps and per-epoch calls)", "skorch/net.py", "run_single_epoch"),
        ("member forward passes (training)", "ensemble/_module.py", "forward"),
        ("backward passes", "torch/_tensor.py", "backward"),
        ("Adam updates", "torch/optim/adam.py", "adam"),
        ("batches served (pixel gathering)", "ensemble/_net.py", "__getitems__"),
        ("training pixels chosen", "ensemble/_classifier.py", "_training_pixels"),
    ],
    "predict": [
        ("prediction and uncertainty, all", "interactive/_session.py", "predict_with_uncertainty"),
        ("first layer projected at native resolution", "features/_container.py", "projected_bands"),
        ("projection upsampled to the image (bands)", "features/_sampling.py", "band"),
        ("hidden layers of the members", "ensemble/_module.py", "forward_hidden"),
        ("softmax", "ensemble/_voting.py", "class_probabilities"),
        ("guided filter", "postprocessing/_guided.py", "guided_filter"),
        ("Jensen-Shannon uncertainty", "ensemble/_voting.py", "js_uncertainty"),
    ],
}


def profile_round(seg, masks, rng, r):
    """CPU seconds of the parts of one more stroke's refit and prediction (cProfile, CPU-time clock).

    The clock is ``time.process_time``: CPU seconds of every thread of the process, so the load of
    other jobs on the machine does not enter; cProfile's own overhead is in the totals.
    """
    import cProfile
    import pstats

    i = (r // 2) % len(masks)
    (stroke,) = strokes(masks[i], 1, rng)
    seg.add_labels(i, stroke)
    out = {"image": i, "labelled_pixels": seg.n_labelled_pixels, "clock": "process_time (CPU s, all threads)"}
    for phase, call in (("fit", seg.fit), ("predict", lambda: seg.predict_with_uncertainty(i))):
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(call)
        stats = pstats.Stats(profiler).stats  # {(file, line, function): (calls, primitive, own, cumulative, _)}
        parts = {}
        for part, file_end, function in PROFILE_PARTS[phase]:
            found = [(v[1], v[3]) for (f, _, fn), v in stats.items() if fn == function and f.endswith(file_end)]
            parts[part] = {"cpu_s": round(sum(c for _, c in found), 4), "calls": int(sum(n for n, _ in found))}
        out[phase] = parts
    return out


COLUMNS = ["backbone", "n_features", "first_extraction_s", "first_extraction_cpu_s", "stroke_to_prediction_s_median",
           "stroke_to_prediction_cpu_s_median", "fit_cpu_s_median", "predict_cpu_s_median",
           "unet_forward_passes_during_refits"]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8, help="strokes after the first fit (default: 8)")
    p.add_argument("--n-images", type=int, default=3, help="session images (default: 3)")
    p.add_argument("--size", type=int, default=512, help="image side (default: 512)")
    p.add_argument("--backbones", nargs="+", choices=("bundled", "adm256"), default=["bundled", "adm256"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None,
                   help="the session's max_epochs (default: the session's own default)")
    p.add_argument("--mlp-batch-sizes", type=int, nargs="+", default=[None], metavar="B",
                   help="the session's mlp_batch_size, one result per value in this run (default: the session's "
                        "own default)")
    p.add_argument("--combine", type=Path, nargs="+", default=None, metavar="RECORD",
                   help="measure nothing: write one record of the results of these records (each keeps its 'run')")
    p.add_argument("--merge", action="store_true",
                   help="keep the other backbones' results of an existing record (each is then from its own run, "
                        "with its own 'run' entry: date, load average, rounds)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.n_images, args.size = 2, 2, 64
    if args.combine:
        records = [json.loads(Path(f).read_text()) for f in args.combine]
        results = [dict(r, data=r.get("data", record["data"]), load_average_1min=record["machine"]["load_average_1min"])
                   for record in records for r in record["results"]]
        source = "; ".join(sorted({r["data"] for r in results}))
        args.backbones = [r["backbone"] for r in results]
        return _write(args, results, source)
    import torch

    images, masks, source = _common.horse_data("labeled_pool", args.n_images, size=args.size)
    results = []
    with _common.torch_threads(args.threads):
        for name in args.backbones:
            if name == "bundled":
                model, params = None, {}
            else:
                width, size = (32, 64) if args.quick else (256, 256)
                model, params = _common.adm256_unet(width, image_size=size), {"blocks": (5, 6, 7, 8, 12)}
            if args.quick:
                params.update(steps=(50,), n_estimators=2, max_epochs=3)
            if args.max_epochs is not None:
                params.update(max_epochs=args.max_epochs)
            label = "bundled horse DDPM" if name == "bundled" else \
                f"ADM-256 random init ({_common.describe_model(model)['parameters_M']} M)"
            for batch in args.mlp_batch_sizes:
                variant = dict(params, **({} if batch is None else {"mlp_batch_size": batch}))
                suffix = "".join(f", {k}={variant[k]}" for k in ("max_epochs", "mlp_batch_size")
                                 if k in variant)
                suffix += f", {torch.get_num_threads()} threads" if args.threads is not None else ""
                result = measure(label + suffix, model, images, masks, args.rounds, args.seed, device="cpu", **variant)
                result["data"] = source
                result["run"] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rounds": args.rounds,
                                 "load_average_1min_after": round(os.getloadavg()[0], 2),
                                 "torch_threads": torch.get_num_threads()}
                results.append(result)
                print(f"{label + suffix}: done", flush=True)
    return _write(args, results, source)


def _write(args, results, source):
    out = args.out or _common.RESULTS_DIR / ("refit_latency" + ("_quick" if args.quick else "") + ".json")
    if args.merge and Path(out).is_file():
        measured = {r["backbone"] for r in results}
        results = [r for r in json.loads(Path(out).read_text())["results"] if r["backbone"] not in measured] + results
    payload = {
        "question": "seconds from a new stroke to an updated prediction of a 512x512 image (issue 27 target: "
                    "<= 3 s with the bundled backbone on the 2-core CPU)",
        "data": source, "seed": args.seed, "quick": args.quick,
        "rounds": "per result: len(rounds)" if args.combine else args.rounds,
        "model": None if any(r["backbone"].startswith("bundled") for r in results) else "random init",
        "results": results,
    }
    path = _common.write_json("refit_latency", payload, out, device="cpu")
    _common.print_table(
        [{k: r[k] for k in COLUMNS} for r in results], COLUMNS,
        title=f"Refit latency, {args.size}² images, load average {_common.machine()['load_average_1min']}")
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
