"""Every GPU figure of the package in one prepared run (driver of ``gpu_check.sh``).

Stages, in this order, each writing its JSON record under ``--out-dir`` (``$OUT`` on the device
machine) and one row of the closing table:

1. ``tests``: the CUDA-only tests (the test files that skip without a GPU), through pytest;
2. ``extract``: ``extract.py`` — full-width ADM-256 (552.8 M parameters), blocks 5,6,7,8,12, steps
   50,150,250, the reference style written in that script vs ``DDPMFeatureTransformer`` (bf16
   autocast and fp32), same run; target <= 0.015 s/image;
3. ``ensemble``: ``ensemble.py`` — batched vs one-by-one members at batch 64, and batch 4096 with
   the square-root learning-rate rule; targets >= 8x and >= 100x;
4. ``bf16``: features of the same images with bf16 autocast vs fp32, full width: relative error
   and per-pixel cosine similarity;
5. ``memory``: ``memory.py --real`` on the GPU — full width, N = 50 at 256², all pixels, the
   reference's epochs and early stop, ``--epoch-batches`` batches per epoch: peak GPU memory and
   host RSS;
6. ``weizmann``: the default pipeline (bundled horse DDPM; 1,000 pixels per image, as the README's
   ``weizmann_n20.json``) fitted on CUDA on 20 ``labeled_pool`` horses, saved, loaded in a CPU-only process (``CUDA_VISIBLE_DEVICES=""``) and scored on the
   100 ``test`` horses; the CUDA process's own labels are compared with the CPU's.

``--dry-run`` runs every stage on the CPU at tiny sizes in well under a minute, so the script
cannot rot (``tests/benchmarks/test_gpu_check.py``); its figures mean nothing.

A stage that fails is recorded (its error in ``gpu_check.json``) and the next one runs: one
broken stage must not waste the rest of a GPU lease.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import _common

NAME = "gpu_check"
#: test files whose tests need CUDA (they skip without it); their CPU tests run too, quickly
CUDA_TEST_FILES = ("tests/features/test_autocast.py", "tests/features/test_transformer_sharing.py")
TARGETS = {"extract_s_per_image": 0.015, "ensemble_batched_x": 8.0, "ensemble_large_x": 100.0}


def run_script(name, args, out_dir, timeout):
    """Run ``benchmarks/NAME.py`` in a fresh process; return its JSON record."""
    out = out_dir / f"{name}.json"
    command = [sys.executable, str(_common.BENCHMARKS_DIR / f"{name}.py"), *args, "--out", str(out)]
    subprocess.run(command, check=True, timeout=timeout, cwd=_common.REPO_ROOT)
    return json.loads(out.read_text())


def stage_tests(ctx):
    junit = ctx.out_dir / "cuda_tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={junit}",
               *CUDA_TEST_FILES]
    if ctx.dry_run:
        command.append("--collect-only")  # the files and their CUDA tests exist; nothing to run on a CPU
    proc = subprocess.run(command, cwd=_common.REPO_ROOT, timeout=240, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(proc.stdout[-3000:])
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode not in (0, 5) or (not ctx.dry_run and proc.returncode != 0):
        raise RuntimeError(f"CUDA tests failed (exit {proc.returncode}): {summary}")
    return {"result": summary}


def stage_extract(ctx):
    args = ["--quick", "--device", "cpu", "--threads", "1"] if ctx.dry_run else ["--device", "cuda"]
    record = run_script("extract", args, ctx.out_dir, timeout=300)
    rows = {f"{r['method']} {r['precision']}": r for r in record["rows"]}
    best = min((r for r in record["rows"] if r["method"] == "ours"), key=lambda r: r["seconds_per_image"])
    return {"reference s/img": rows["reference fp32"]["seconds_per_image"],
            "ours s/img": best["seconds_per_image"], "ours precision": best["precision"],
            "target s/img": TARGETS["extract_s_per_image"],
            "met": best["seconds_per_image"] <= TARGETS["extract_s_per_image"]}


def stage_ensemble(ctx):
    args = ["--quick", "--device", "cpu", "--threads", "1"] if ctx.dry_run else ["--device", "cuda"]
    record = run_script("ensemble", args, ctx.out_dir, timeout=300)
    rows = {r["mode"]: r for r in record["rows"]}
    batched, large = rows["batched"]["speedup_vs_one_by_one"], rows["batched-large"]["speedup_vs_one_by_one"]
    return {"batched x": batched, "large x": large, "large batch": rows["batched-large"]["batch_size"],
            "met": batched >= TARGETS["ensemble_batched_x"] and large >= TARGETS["ensemble_large_x"]}


def stage_bf16(ctx):
    import torch

    from sklearn_ddpm import DDPMFeatureTransformer

    device = "cpu" if ctx.dry_run else "cuda"
    base, size, n = (8, 64, 2) if ctx.dry_run else (256, 256, 8)
    images, _, source = _common.horse_data("unlabeled", n, size, with_masks=False)
    unet = _common.adm256_unet(base, image_size=size)
    features = {}
    for precision, autocast in (("fp32", None), ("bf16", "bfloat16")):
        transformer = DDPMFeatureTransformer(unet, blocks=(5, 6, 7, 8, 12), steps=(50, 150, 250), batch_size=n,
                                             device=device, autocast_dtype=autocast, feature_dtype="float32")
        compact = transformer.fit_transform(images)
        features[precision] = [m.float() for m in compact.maps]  # native resolution: every feature once
    # Per (step, block) map at its native resolution; cosine: of each pixel's channel vector.
    pairs = list(zip(features["bf16"], features["fp32"]))
    error = sum(float((b - f).pow(2).sum()) for b, f in pairs)
    relative = (error / sum(float(f.pow(2).sum()) for _, f in pairs)) ** 0.5
    cosines = [torch.nn.functional.cosine_similarity(b.reshape(-1, b.shape[-1]), f.reshape(-1, f.shape[-1]), dim=1)
               for b, f in pairs]
    record = {"device": device, "model": _common.describe_model(unet), "data": source, "image_size": size,
              "n_images": n, "relative_l2_error": relative,
              "relative_l2_error_per_layer": [float((b - f).norm() / f.norm()) for b, f in pairs],
              # the measure tests/features/test_autocast.py bounds on the CPU (> 0.998 per layer)
              "cosine_per_layer": [float(torch.nn.functional.cosine_similarity(b.flatten().double(), f.flatten().double(),
                                                                              dim=0)) for b, f in pairs],
              "layer_names": [list(name) for name in transformer.layer_names_],
              "cosine_min": min(float(c.min()) for c in cosines),
              "cosine_mean": float(torch.cat(cosines).mean()),
              "max_abs_diff": max(float((b - f).abs().max()) for b, f in pairs),
              "max_abs_fp32": max(float(f.abs().max()) for _, f in pairs)}
    _common.write_json("bf16_agreement", record, ctx.out_dir / "bf16_agreement.json", device)
    return {"relative L2": relative, "cosine min": record["cosine_min"],
            "layer cosine min": min(record["cosine_per_layer"]),
            "layer relative L2 max": max(record["relative_l2_error_per_layer"])}


def stage_memory(ctx):
    args = (["--quick", "--device", "cpu", "--threads", "1", "--real"] if ctx.dry_run
            else ["--device", "cuda", "--real", "--epoch-batches", str(ctx.epoch_batches)])
    record = run_script("memory", args, ctx.out_dir, timeout=420)
    run = record["runs"][0]
    return {"peak RSS GB": run["peak_rss"] / 1e9, "peak GPU GB": (run.get("peak_gpu_bytes") or 0) / 1e9,
            "epochs": run["epochs_run"], "pixels": run["training_pixels"]}


def stage_weizmann(ctx):
    import numpy as np

    from sklearn_ddpm import make_segmenter, miou_score, save_segmenter

    device = "cpu" if ctx.dry_run else "cuda"
    n_train, n_test = (2, 2) if ctx.dry_run else (20, 100)
    pool, pool_masks, source = _common.horse_data("labeled_pool", n_train)
    test, test_masks, test_source = _common.horse_data("test", n_test)
    if ctx.dry_run:  # a 0.6 M-parameter UNet at 32², few members and pixels: seconds on a CPU
        from sklearn_ddpm.backbone import tiny_unet

        pipeline = make_segmenter(tiny_unet(), device=device, random_state=0)
        pipeline.set_params(clf__n_estimators=2, clf__max_epochs=1, clf__max_pixels_per_image=200)
    else:  # 1,000 labelled pixels per image, as the README's weizmann_n20.json record (78.6 +- 0.3 on the CPU)
        pipeline = make_segmenter(device=device, random_state=0, max_pixels_per_image=1000)
    with _common.stopwatch(device) as fit_clock:
        pipeline.fit(pool, pool_masks)
    with _common.stopwatch(device) as predict_clock:
        on_device = pipeline.predict(test)
    model = ctx.out_dir / "weizmann_cuda_fit.skddpm"
    save_segmenter(pipeline, model)  # the safe format (content decides, not the name)
    labels = ctx.out_dir / "weizmann_cpu_labels.npz"
    # A process that cannot see the GPU, as on a CPU-only machine.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, __file__, "--predict-on-cpu", str(model), str(labels), str(n_test)],
                   check=True, env=env, cwd=_common.REPO_ROOT, timeout=400)
    loaded = np.load(labels)
    on_cpu = [loaded[f"a{i}"] for i in range(n_test)]
    same = np.mean(np.concatenate([(a == b).ravel() for a, b in zip(_as_list(on_device), on_cpu)]))
    record = {"data": {"train": source, "test": test_source}, "fit_device": device, "n_train": n_train,
              "n_test": n_test, "settings": "make_segmenter(random_state=0, max_pixels_per_image=1000): bundled horse "
              "DDPM, blocks 'auto', steps 50,150,250, 10 members" + (" (dry run: tiny_unet, 2 members, 1 epoch, 200 px/image)"
                                                          if ctx.dry_run else ""),
              "miou_fit_device": 100 * miou_score(test_masks, on_device),
              "miou_loaded_on_cpu": 100 * miou_score(test_masks, on_cpu),
              "label_agreement_device_vs_cpu": float(same),
              "seconds_fit": fit_clock["seconds"], "seconds_predict_on_device": predict_clock["seconds"],
              "cpu_process": json.loads((labels.with_suffix(".json")).read_text())}
    model.unlink()  # hundreds of MB: not a record; the labels and their note are in this record
    labels.unlink()
    labels.with_suffix(".json").unlink()
    _common.write_json("weizmann_cuda_to_cpu", record, ctx.out_dir / "weizmann_cuda_to_cpu.json", device)
    return {"mIoU CPU-loaded": record["miou_loaded_on_cpu"], "mIoU on device": record["miou_fit_device"],
            "labels equal": float(same)}


def _as_list(labels):
    return list(labels) if not isinstance(labels, list) else labels


def predict_on_cpu(model, labels, n_test):
    """In a process without a GPU: load the CUDA-fitted pipeline and predict the test horses."""
    import warnings

    import numpy as np
    import torch

    from sklearn_ddpm import load_segmenter

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = load_segmenter(model)
    test, _, _ = _common.horse_data("test", int(n_test))
    start = time.perf_counter()
    predicted = _as_list(pipeline.predict(test))
    np.savez_compressed(labels, **{f"a{i}": p for i, p in enumerate(predicted)})
    Path(labels).with_suffix(".json").write_text(json.dumps({
        "cuda_available": torch.cuda.is_available(), "device_after_load": str(pipeline[-1].device),
        "warnings": sorted({str(w.message)[:200] for w in caught}), "seconds_predict": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads()}))


STAGES = {"tests": stage_tests, "extract": stage_extract, "ensemble": stage_ensemble, "bf16": stage_bf16,
          "memory": stage_memory, "weizmann": stage_weizmann}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--predict-on-cpu"]:
        return predict_on_cpu(*argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: checks every stage runs")
    p.add_argument("--out-dir", type=Path, default=Path(os.environ.get("OUT") or _common.RESULTS_DIR / NAME))
    p.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    p.add_argument("--epoch-batches", type=int, default=200, help="memory stage: batches per epoch")
    ctx = p.parse_args(argv)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    if not ctx.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU visible; use --dry-run to check the script on a CPU.")
    results, start = {}, time.perf_counter()
    for name in ctx.stages:
        began = time.perf_counter()
        print(f"== {name} ==", flush=True)
        try:
            results[name] = {"status": "ok", **STAGES[name](ctx)}
        except Exception as exc:  # recorded; the next stage still runs
            traceback.print_exc()
            results[name] = {"status": f"failed: {type(exc).__name__}: {str(exc)[-500:]}"}
        results[name]["seconds"] = time.perf_counter() - began
    table = [{"stage": name, "status": r["status"][:60], "seconds": r["seconds"],
              "figures": ", ".join(f"{k} {_fmt(v)}" for k, v in r.items() if k not in ("status", "seconds"))}
             for name, r in results.items()]
    _common.print_table(table, ["stage", "status", "seconds", "figures"],
                        title=f"\ngpu_check ({'dry run, CPU' if ctx.dry_run else torch.cuda.get_device_name(0)}; "
                              f"{time.perf_counter() - start:.0f} s; records in {ctx.out_dir})")
    _common.write_json(NAME, {"dry_run": ctx.dry_run, "targets": TARGETS, "stages": results},
                       ctx.out_dir / f"{NAME}.json", "cpu" if ctx.dry_run else "cuda")
    return 1 if any(r["status"] != "ok" for r in results.values()) else 0


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
