"""CPU inference: this checkout against the package at a baseline commit, and what each change buys.

Four parts, each with its own record::

    python benchmarks/cpu_inference.py [--part speed] [--repeats 3] [--baseline 711d20a] [--threads N]
    python benchmarks/cpu_inference.py --part variants [--threads 1]
    python benchmarks/cpu_inference.py --part accuracy [--seeds 3]
    python benchmarks/cpu_inference.py --part profile [--repeats 3] [--threads 1]

- ``speed`` (``cpu_inference.json``): checks the baseline commit and this checkout's last commit
  out into temporary git worktrees (removed afterwards) and times, for both trees, ``python examples/demo.py`` (what ``make demo``
  runs) and ``sklearn-ddpm predict`` of the 10 bundled test horses with a model that tree's
  ``sklearn-ddpm fit`` made from the 10 bundled training horses (trained briefly: prediction costs
  the same however long the members trained). Both
  trees run in the same virtual environment, the tree's own package first on ``PYTHONPATH``;
  the runs alternate (baseline first in even repeats, this tree first in odd ones) and the
  record has every time, the medians and their ratio.
- ``variants`` (``cpu_inference_variants.json``): feature extraction of 8 bundled horses with
  the bundled UNet in fp32, bf16 autocast, ``channels_last``, bf16 + ``torch.compile``, and 1 or
  2 threads; rounds alternate and ratios are against fp32 with the same threads.
- ``accuracy`` (``cpu_inference_accuracy.json``): Weizmann test split (100 images), the first 20
  of ``labeled_pool``, ``--seeds`` seeds (of the diffusion noise and of the members), features
  extracted in fp32 and with ``autocast_dtype="bfloat16"``: the mIoU of each, scored with the
  default guided filter and with the members' vote, and their difference, the adoption rule being
  "faster and within 0.3 points" (default pipeline, mean over seeds).

- ``profile`` (``cpu_inference_profile.json``): where the demo's seconds go: ``examples/demo.py``
  run ``--repeats`` times in fresh processes by ``_demo_profile.py``, which times each stage
  (imports, feature extraction, training, the members' probabilities, guided filter, uncertainty,
  overlays, PNGs) in wall and CPU seconds; medians.

Timings on the shared machine are noisy: the load average is recorded before and after.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common

NAME = "cpu_inference"
BASELINE = "711d20a"
ADOPTION_MIOU_POINTS = 0.3
# The model `predict` is timed with: the default pipeline (10 members) trained briefly. Prediction
# costs the same however long the members trained; a full fit would only lengthen the run.
TIMING_MODEL = ["--max-epochs", "1", "--max-pixels-per-image", "200"]
_WHICH_PACKAGE = "import importlib.util; print(importlib.util.find_spec('sklearn_ddpm').origin)"


# -- speed: this tree against the baseline commit ----------------------------------------------
class Worktree:
    """``git worktree add --detach`` of ``commit`` into a temporary folder, removed on exit."""

    def __init__(self, commit, parent):
        self.commit, self.path = commit, Path(parent) / f"tree-{commit}"

    def __enter__(self):
        subprocess.run(["git", "-C", str(_common.REPO_ROOT), "worktree", "add", "--detach", str(self.path),
                        self.commit], check=True, capture_output=True, text=True)
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["git", "-C", str(_common.REPO_ROOT), "worktree", "remove", "--force", str(self.path)],
                       capture_output=True, text=True)
        subprocess.run(["git", "-C", str(_common.REPO_ROOT), "worktree", "prune"], capture_output=True)


def _run(tree, args, threads):
    """Run ``python ARGS`` with ``tree``'s package first on the path; ``(seconds, stdout)``."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args} in {tree} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def _bundled_folders(work):
    """The bundled horses as folders: training images and masks, test images."""
    root = _common.REPO_ROOT / "sklearn_ddpm" / "_data" / "horses"
    splits = json.loads((root / "splits.json").read_text())
    folders = {k: Path(work) / k for k in ("train_images", "train_masks", "test_images")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name in splits["train"]:
        shutil.copy(root / "images" / f"{name}.jpg", folders["train_images"])
        shutil.copy(root / "masks" / f"{name}.png", folders["train_masks"])
    for name in splits["test"]:
        shutil.copy(root / "images" / f"{name}.jpg", folders["test_images"])
    return folders


def _commands(kind, tree, work, folders, threads, quick):
    """The timed command of ``kind`` ("demo" or "predict") for ``tree``."""
    thread_args = ["--threads", str(threads)] if threads else []
    if quick:  # the harness only: which package each tree would import (importing torch takes seconds)
        return ["-c", _WHICH_PACKAGE]
    if kind == "demo":
        return ["examples/demo.py", "--output", str(Path(work) / "demo_out"), *thread_args]
    return ["-m", "sklearn_ddpm.cli", "predict", str(Path(work) / "model.joblib"), str(folders["test_images"]),
            "-o", str(Path(work) / "predictions"), "--quiet", *thread_args]


def speed(args):
    load_before = os.getloadavg()
    kinds = ["demo", "predict"]
    trees, times, fit_seconds, imported = {}, {k: {"baseline": [], "current": []} for k in kinds}, {}, {}
    # This tree at its last commit, also in a worktree: edits in progress in the checkout (others'
    # included) cannot break or change the measurement half-way.
    current = _git("rev-parse", "--short", "HEAD")
    with tempfile.TemporaryDirectory(prefix="cpu_inference_") as tmp, Worktree(args.baseline, tmp) as old, \
            Worktree(current, tmp) as new:
        trees = {"baseline": old, "current": new}
        folders = _bundled_folders(Path(tmp) / "data")
        for version, tree in trees.items():
            work = Path(tmp) / version
            work.mkdir()
            _, out = _run(tree, ["-c", _WHICH_PACKAGE], args.threads)
            imported[version] = out.strip()
            if not args.quick:
                fit_seconds[version], _ = _run(tree, [
                    "-m", "sklearn_ddpm.cli", "fit", str(folders["train_images"]), str(folders["train_masks"]),
                    "-o", str(work / "model.joblib"), *TIMING_MODEL, "--quiet",
                    *(["--threads", str(args.threads)] if args.threads else [])], args.threads)
        for repeat in range(args.repeats):
            order = ["baseline", "current"] if repeat % 2 == 0 else ["current", "baseline"]
            for kind in kinds:
                for version in order:
                    work = Path(tmp) / version
                    seconds, _ = _run(trees[version], _commands(kind, trees[version], work, folders, args.threads,
                                                                args.quick), args.threads)
                    times[kind][version].append(seconds)
                    print(f"repeat {repeat}: {kind:<7} {version:<8} {seconds:7.1f} s", flush=True)
            path = _speed_record(args, times, fit_seconds, imported, old, current, load_before, repeat + 1)
    _common.print_table(_speed_rows(times), ["command", "baseline_median_s", "current_median_s", "speedup"],
                        title=f"{args.baseline} vs this tree, {args.repeats} alternating repeats")
    return path


def _speed_rows(times):
    rows = []
    for kind, measured in times.items():
        base, cur = (statistics.median(measured[v]) for v in ("baseline", "current"))
        rows.append({"command": kind, "baseline_median_s": base, "current_median_s": cur, "speedup": base / cur,
                     "baseline_s": measured["baseline"], "current_s": measured["current"]})
    return rows


def _speed_record(args, times, fit_seconds, imported, worktree, current, load_before, repeats_done):
    payload = {
        "baseline_commit": args.baseline,
        "current_commit": current,
        "imported_from": imported,
        "worktree": str(worktree),
        "repeats": repeats_done,
        "repeats_planned": args.repeats,
        "threads": args.threads or "torch default",
        "commands": {"demo": "python examples/demo.py --output DIR",
                     "predict": "python -m sklearn_ddpm.cli predict MODEL TEST_DIR -o DIR --quiet (10 bundled test horses)",
                     "fit (untimed, makes the model predict uses)": "sklearn-ddpm fit TRAIN TRAIN_MASKS "
                                                                     + " ".join(TIMING_MODEL)},
        "fit_seconds": fit_seconds,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "shared machine: noisy; runs alternate between the trees, medians of each",
        "rows": _speed_rows(times),
    }
    return _common.write_json(NAME, dict(payload, part="speed"), args.out, device="cpu")


def _out(args, part):
    """``--out``, or ``results/cpu_inference_PART.json``: one record per part."""
    return args.out if args.out is not None else _common.RESULTS_DIR / f"{NAME}_{part}.json"


def _git(*args):
    return subprocess.run(["git", "-C", str(_common.REPO_ROOT), *args], capture_output=True, text=True).stdout.strip()


# -- variants: what each setting of the UNet forward buys ---------------------------------------
def variants(args):
    import copy

    import torch

    from sklearn_ddpm import DDPMFeatureTransformer
    from sklearn_ddpm.backbone import Backbone, load_backbone
    from sklearn_ddpm.datasets import load_horses

    images = load_horses("train").images[: 2 if args.quick else 8]
    bundled = load_backbone(None)
    unet_cl = copy.deepcopy(bundled.unet).to(memory_format=torch.channels_last)
    channels_last = Backbone(unet_cl, bundled.scheduler, source="bundled, channels_last")
    thread_counts = [1] if args.quick else [1, 2]
    configs = []
    for n in thread_counts:
        configs += [dict(threads=n, autocast=None, channels_last=False, compile=False),
                    dict(threads=n, autocast="bfloat16", channels_last=False, compile=False),
                    dict(threads=n, autocast=None, channels_last=True, compile=False),
                    dict(threads=n, autocast="bfloat16", channels_last=True, compile=False)]
    if not args.quick:
        configs.append(dict(threads=1, autocast="bfloat16", channels_last=False, compile=True))

    def transformer(c):
        return DDPMFeatureTransformer(channels_last if c["channels_last"] else bundled, autocast_dtype=c["autocast"],
                                      compile=c["compile"]).fit(images)

    load_before = os.getloadavg()
    fitted, first = [], []
    for c in configs:
        t = transformer(c)
        with _common.torch_threads(c["threads"]):
            try:
                with _common.stopwatch() as w:
                    t.transform(images)  # one-off costs (compilation, first allocation)
                fitted.append(t)
                first.append(w["seconds"])
            except Exception as exc:  # e.g. inductor without a working C++ compiler
                c["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                fitted.append(None)
                first.append(None)
    times = [[] for _ in configs]
    for r in range(1 if args.quick else args.repeats):
        order = range(len(configs)) if r % 2 == 0 else reversed(range(len(configs)))
        for i in order:
            if fitted[i] is not None:
                with _common.torch_threads(configs[i]["threads"]), _common.stopwatch() as w:
                    fitted[i].transform(images)
                times[i].append(w["seconds"])
    rows = []
    for c, ts, f in zip(configs, times, first):
        rows.append(dict(c, seconds_per_image=statistics.median(ts) / len(images) if ts else None, rounds=ts,
                         first_call_seconds=f))
    for row in rows:
        base = next(r for r in rows if r["threads"] == row["threads"] and r["autocast"] is None
                    and not r["channels_last"] and not r["compile"])
        row["speedup_vs_fp32"] = (base["seconds_per_image"] / row["seconds_per_image"]
                                  if row["seconds_per_image"] else None)
    payload = {"images": len(images), "backbone": repr(bundled), "steps": [50, 150, 250],
               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "note": "shared machine: noisy; rounds alternate, medians", "rows": rows}
    path = _common.write_json(NAME, dict(payload, part="variants"), _out(args, "variants"), device="cpu")
    _common.print_table(rows, ["threads", "autocast", "channels_last", "compile", "seconds_per_image",
                               "speedup_vs_fp32"], title="feature extraction, bundled UNet")
    return path


# -- accuracy: does bf16 change the segmentation? ------------------------------------------------
# Scored the package's default way (refine="guided") and by the members' plain vote; the members
# are fitted once per seed and feature kind (refine acts at prediction only).
REFINES = ("guided", "vote")


def accuracy(args):
    from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, miou_score
    from sklearn_ddpm.postprocessing import GuidedFilter

    n_labeled, n_test, seeds, n_estimators = (2, 3, 1, 2) if args.quick else (20, 100, args.seeds, 10)
    pool, pool_masks, source = _common.horse_data("labeled_pool", n_labeled)
    test, test_masks, test_source = _common.horse_data("test", n_test)
    load_before = os.getloadavg()
    kinds = {"fp32": None, "bf16": "bfloat16"}
    scores = {refine: {name: [] for name in kinds} for refine in REFINES}
    seconds = {name: [] for name in kinds}
    with _common.torch_threads(args.threads):
        for seed in range(seeds):  # the seed of the diffusion noise and of the members
            for name, autocast in kinds.items():
                transformer = DDPMFeatureTransformer(autocast_dtype=autocast, random_state=seed).fit(pool)
                with _common.stopwatch() as w:
                    train_features, test_features = transformer.transform(pool), transformer.transform(test)
                seconds[name].append(w["seconds"])
                print(f"seed {seed} {name} features: {w['seconds']:.0f} s", flush=True)
                clf = MLPEnsembleClassifier(n_estimators=n_estimators, random_state=seed, max_pixels_per_image=1000)
                clf.fit(train_features, pool_masks)
                for refine in REFINES:
                    clf.set_params(refine=GuidedFilter() if refine == "guided" else None)
                    scores[refine][name].append(100 * miou_score(test_masks, clf.predict(test_features)))
                    print(f"seed {seed} {name} {refine}: {scores[refine][name][-1]:.2f} mIoU", flush=True)
            # after every seed, so that an interrupted run keeps the seeds it finished
            path = _common.write_json(NAME, dict(_accuracy_payload(scores, seconds), part="accuracy", data={
                "train": source, "test": test_source}, n_estimators=n_estimators, max_pixels_per_image=1000,
                seeds=seed + 1, seeds_planned=seeds, load_average_before=load_before,
                load_average_after=os.getloadavg()), _out(args, "accuracy"), device="cpu")
    rows = [{"features": name, **{refine: _common.format_mean_std(scores[refine][name]) for refine in REFINES}}
            for name in kinds]
    _common.print_table(rows, ["features", *REFINES], title=f"Weizmann test ({test_source}), n = {n_labeled}, "
                        f"{seeds} seeds")
    print("bf16 - fp32: " + ", ".join(f"{r} {_difference(scores[r]):+.2f} points" for r in REFINES))
    return path


def _difference(scores):
    return float(np.mean(scores["bf16"]) - np.mean(scores["fp32"]))


def _accuracy_payload(scores, seconds):
    """mIoU per refine and feature kind, their bf16 - fp32 differences and the adoption verdict."""
    differences = {refine: _difference(scores[refine]) for refine in REFINES}
    return {
        "miou": scores,
        "miou_mean": {r: {k: _common.mean_sample_std(v)[0] for k, v in s.items()} for r, s in scores.items()},
        "miou_std": {r: {k: _common.mean_sample_std(v)[1] for k, v in s.items()} for r, s in scores.items()},
        "std_note": _common.STD_NOTE,
        "bf16_minus_fp32_points": differences,
        "adoption_rule": f"|bf16 - fp32| < {ADOPTION_MIOU_POINTS} points (mean over seeds) with the default "
                         "refine='guided'",
        "within_adoption_rule": abs(differences["guided"]) < ADOPTION_MIOU_POINTS,
        "extract_seconds": seconds,
        "extract_speedup_bf16": float(np.median(seconds["fp32"]) / np.median(seconds["bf16"])),
        "note": "seed = the diffusion noise's and the members'; extraction times: one pass per seed and kind, "
                "fp32 first, on a shared machine (noisy), speed-up of the medians; classifier: "
                "max_pixels_per_image=1000 as in the Weizmann benchmarks, fitted once per seed and feature kind, "
                "scored with the guided filter (the package default) and with the members' vote",
    }


# -- profile: where the demo's seconds go ---------------------------------------------------------
QUICK_DEMO = ["--n-estimators", "2", "--max-pixels-per-image", "20"]


def profile(args):
    """``examples/demo.py`` in fresh processes with each stage timed (``_demo_profile.py``); medians."""
    runs = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cpu_inference_profile_") as tmp:
        demo_args = ["--output", tmp, "--record", str(Path(tmp) / "demo.json"),
                     *(["--threads", str(args.threads)] if args.threads else []), *(QUICK_DEMO if args.quick else [])]
        for repeat in range(args.repeats):
            _, out = _run(_common.REPO_ROOT, [str(_common.BENCHMARKS_DIR / "_demo_profile.py"), *demo_args],
                          args.threads)
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(f"run {repeat}: {runs[-1]['total']['wall_s']:.1f} s", flush=True)
    rows = [{"stage": stage, **{k: statistics.median(run[stage][k] for run in runs) for k in ("wall_s", "cpu_s")},
             "calls": runs[0][stage]["calls"]} for stage in runs[0]]
    total_cpu = next(r["cpu_s"] for r in rows if r["stage"] == "total")
    for row in rows:
        row["cpu_share"] = row["cpu_s"] / total_cpu
    payload = {"command": "python examples/demo.py " + " ".join(QUICK_DEMO if args.quick else []) + " (stages timed)",
               "current_commit": _git("rev-parse", "--short", "HEAD"), "threads": args.threads or "torch default",
               "repeats": args.repeats, "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "note": "medians over the runs; cpu_s = the process's user + system seconds, which move less with the "
                       "machine's load than wall_s; 'total' leaves out the interpreter's start-up",
               "runs": runs, "rows": rows}
    path = _common.write_json(NAME, dict(payload, part="profile"), _out(args, "profile"), device="cpu")
    _common.print_table(rows, ["stage", "wall_s", "cpu_s", "cpu_share"], title="examples/demo.py by stage")
    return path


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--part", choices=["speed", "variants", "accuracy", "profile"], default="speed")
    p.add_argument("--baseline", default=BASELINE, help="commit to compare against (speed)")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats (speed, variants), demo runs (profile)")
    p.add_argument("--seeds", type=int, default=3, help="classifier seeds (accuracy)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    path = {"speed": speed, "variants": variants, "accuracy": accuracy, "profile": profile}[args.part](args)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
