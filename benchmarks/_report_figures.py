"""The figures quoted in running prose of the docs, each computed from its record (used by report.py).

A page quotes one as ``<!-- fig:KEY -->...<!-- /fig -->``; ``figure(KEY)`` returns its text.
"""

import json

import numpy as np
import _report_multiclass as mc
from _report_records import CCP_CLASS_NAMES, ROOT, _cv_cells, _dask_runs, _training, load, mean_std, rows_by


def _get(name, *path):
    value = load(name)
    for key in path:
        value = value[key]
    return value


def _ddp(key):
    return _get("ddp_training", "summary", key)


def _dask_images_per_second():
    r = load("distributed_predict")
    rates = [run["images_per_second"] for _, run in _dask_runs(r)]
    return f"{min(rates):.2f}–{max(rates):.2f}"


def _dask_spread():
    r = load("distributed_predict")
    ratios = [max(x["seconds"] for x in run["repeats"]) / min(x["seconds"] for x in run["repeats"])
              for _, run in _dask_runs(r)]
    return f"{max(ratios):.1f}×"


def _dask_worker_rss():
    r = load("distributed_predict")
    rss = [m for key in ("dask_1_worker", "dask_2_workers") for rep in r["runs"][key]["repeats"]
           for m in rep["peak_rss_mib_per_worker"]]
    return f"{min(rss):.0f}–{max(rss):.0f} MiB"


def _dask_label_difference():
    r = load("distributed_predict")
    diffs = [rep["labels_differing_from_cli"] for key in ("dask_1_worker", "dask_2_workers")
             for rep in r["runs"][key]["repeats"]]
    worst = max(diffs, key=lambda d: d["pixel_fraction"])
    return (f"{worst['pixel_fraction'] * 1e6:.1f} millionths of the pixels (in {worst['images']} of "
            f"{r['settings']['n_images']} images)")


FIGURES = {
    # scaling.md: Dask prediction (distributed_predict.json) and DDP training (ddp_training.json)
    "dask.images_per_second": _dask_images_per_second,
    "dask.spread": _dask_spread,
    "dask.worker_rss": _dask_worker_rss,
    "dask.label_difference": _dask_label_difference,
    "dask.million_images_hours": lambda: "–".join(
        f"{1e6 / rate / 3600:.0f}" for rate in sorted((run["images_per_second"] for _, run in
                                                       _dask_runs(load("distributed_predict"))), reverse=True)[::2]),
    "dask.io": lambda: (f"{_get('distributed_predict', 'io', 'read_seconds_per_image'):.4f} + "
                        f"{_get('distributed_predict', 'io', 'write_labels_seconds_per_image'):.4f} s"),
    "ddp.speedup_same_threads": lambda: f"{_ddp('speedup_2proc_vs_1proc_same_threads_per_process'):.2f}×",
    "ddp.speedup_same_cores": lambda: f"{_ddp('speedup_2proc_vs_1proc_same_cores'):.1f}×",
    "ddp.overhead": lambda: (f"{_ddp('ddp_overhead_seconds_per_step'):.2f} s "
                             f"({100 * _ddp('ddp_overhead_fraction_of_2proc_step'):.0f} % of the step)"),
    "ddp.allreduce": lambda: (f"{_ddp('allreduce_gradient_floats') / 1e6:.1f} M gradient floats "
                              f"took {1000 * _get('ddp_training', 'allreduce', 'median_seconds'):.0f} ms (median of "
                              f"{_get('ddp_training', 'allreduce', 'reps')}; "
                              f"{100 * _ddp('allreduce_fraction_of_2proc_step'):.1f} % of the step)"),
}


def _gb(n_bytes):
    return f"{n_bytes / 1e9:.2f} GB"


def _weizmann_scores(name, method, n):
    return rows_by(load(name), method=method, n_labeled=int(n))[0]["scores"]


def _weizmann_gaps(*names):
    """DDPM minus scikit-image mean mIoU for every n of the records, as "lo–hi"."""
    gaps = [np.mean(_weizmann_scores(name, "ddpm", row["n_labeled"])) - np.mean(row["scores"])
            for name in names for row in load(name)["rows"] if row["method"] == "skimage"]
    return f"{min(gaps):.1f}–{max(gaps):.1f}"


def _backbone_entry(preset, step):
    for b in load("weizmann_backbones")["backbones"].values():
        if str(b.get("preset", "bundled")) == preset and b["step"] == int(step):
            return b
    raise KeyError(f"no backbone of preset {preset} at step {step} in weizmann_backbones.json")


BACKBONE_FIELDS = {
    "cv": lambda b: f"{b['cv_miou']:.1f}",
    "test": lambda b: mean_std(b["test_miou_per_seed"]),
    "test_mean": lambda b: f"{np.mean(b['test_miou_per_seed']):.1f}",
    "hours": lambda b: f"{b['cpu_hours']:.2f}",
    "wall_hours": lambda b: f"{b['train_seconds'] / 3600:.2f}",
    "cv_folds": lambda b: f"{min(b['cv_fold_miou']):.1f}–{max(b['cv_fold_miou']):.1f}",
}


def figure(key):
    """The text of the inline figure ``key``: a name of FIGURES, or a pattern over a family of records:

    ``w.RECORD.METHOD.N``  mean ± std (seeds) of a weizmann.py record's row (method, n labelled);
    ``bb.PRESET_STEP.FIELD``  a snapshot of weizmann_backbones.json (PRESET "bundled" for the first model;
    FIELD one of BACKBONE_FIELDS).
    """
    if key in FIGURES:
        return FIGURES[key]()
    kind, _, rest = key.partition(".")
    if kind == "w":
        name, method, n = rest.rsplit(".", 2)
        return mean_std(_weizmann_scores(name, method, n))
    if kind == "bb":
        snapshot, field = rest.split(".")
        preset, step = snapshot.rsplit("_", 1)
        return BACKBONE_FIELDS[field](_backbone_entry(preset, step))
    raise KeyError(f"unknown report figure {key!r}")


def _memory_run(name):
    return load(name)["runs"][0]


FIGURES.update({
    # history.md: Weizmann against scikit-image
    "weizmann.gap_first": lambda: _weizmann_gaps("weizmann_n5", "weizmann_n10", "weizmann_n20"),
    "weizmann.gap_default": lambda: _weizmann_gaps("weizmann_default_n5_n10", "weizmann_default_n20"),
    "weizmann.gap_n20": lambda: "{:+.1f} at n = 20: {:.2f} − {:.2f}".format(
        np.mean(_weizmann_scores("weizmann_default_n20", "ddpm", 20)) - np.mean(
            _weizmann_scores("weizmann_default_n20", "skimage", 20)),
        np.mean(_weizmann_scores("weizmann_default_n20", "ddpm", 20)),
        np.mean(_weizmann_scores("weizmann_default_n20", "skimage", 20))),
    "weizmann.above_target": lambda: f"{np.mean(_weizmann_scores('weizmann_default_n20', 'ddpm', 20)) - 85.0:.1f}",
    # history.md: memory
    "memory.n50_after_model": lambda: _gb(_memory_run("memory_full_width_n50")["rss_after_model"]),
    "memory.weights": lambda: _gb(_memory_run("memory_full_width_n50")["model"]["weights_bytes_fp32"]),
    "memory.n50_after_features": lambda: _gb(_memory_run("memory_full_width_n50")["rss_after_features"]),
    "memory.n50_features": lambda: _gb(_memory_run("memory_full_width_n50")["feature_bytes"]),
    "memory.n50_peak": lambda: _gb(_memory_run("memory_full_width_n50")["peak_rss"]),
    "memory.n50_extract_minutes": lambda: f"{_memory_run('memory_full_width_n50')['seconds_features'] / 60:.0f} min",
    "memory.dense": lambda: _gb(_memory_run("memory_full_width_n50")["dense_reference_bytes"]),
    "memory.real_peak": lambda: _gb(_memory_run("memory_real_settings")["peak_rss"]),
    "memory.real_pixels": lambda: f"{_memory_run('memory_real_settings')['training_pixels']:,}",
    "memory.real_epochs": lambda: str(_memory_run("memory_real_settings")["epochs_run"]),
    "memory.real_per_epoch": lambda: "–".join(sorted(
        {f"{v / 1e9:.3f}" for v in _memory_run("memory_real_settings")["peak_rss_sampled_per_epoch"]})) + " GB",
    "memory.real_after_model": lambda: _gb(_memory_run("memory_real_settings")["rss_after_model"]),
    "memory.real_after_features": lambda: _gb(_memory_run("memory_real_settings")["rss_after_features"]),
    "memory.real_history": lambda: f"{_memory_run('memory_real_settings')['history_bytes_per_batch']} B",
    "memory.defaults_peak": lambda: _gb(load("memory_defaults")["run"]["peak_rss"]),
    "memory.defaults_load": lambda: str(load("memory_defaults")["machine"]["load_average_1min"]),
    "memory.defaults_extract": lambda: f"{load('memory_defaults')['run']['seconds_features']:.0f} s",
})


def _test_scores(name, key):
    """Per-seed test scores of ``key`` in a weizmann_levers.py record (``test.per_seed[i].scores[key]``)."""
    return [seed["scores"][key] for seed in load(name)["test"]["per_seed"]]


def _rule_test(key):
    return [seed[key]["miou"] for seed in load("large_batch_rule_n20")["test"]["per_seed"]]


def _mean_gap(a, b):
    return f"{np.mean(a) - np.mean(b):.1f}"


def _profile(*stages):
    """Median CPU seconds (over the runs) of the demo's stages whose names start with one of ``stages``."""
    rows = load("cpu_inference_profile")["rows"]
    return f"{sum(r['cpu_s'] for r in rows if r['stage'].startswith(stages)):.1f}"


def _variant(name, field="rows", **match):
    rows = [r for r in load(name)[field] if all(r.get(k) == v for k, v in match.items())]
    return f"{rows[0]['speedup_vs_fp32']:.2f}×"


def _cpu_inference(command, field):
    row = rows_by(load("cpu_inference"), command=command)[0]
    return f"{row[field]:.1f} s" if field.endswith("_s") else f"{row[field]:.2f}×"


def _cpu_speedup(command):
    return (f"{_cpu_inference(command, 'baseline_median_s')} → {_cpu_inference(command, 'current_median_s')} "
            f"(**{_cpu_inference(command, 'speedup')}**)")


def _accuracy(refine, kind):
    return mean_std(load("cpu_inference_accuracy")["miou"][refine][kind])


FIGURES.update({
    # history.md: large batch (weizmann.py and weizmann_levers.py --part large-batch records)
    "large_batch.gap_sqrt": lambda: _mean_gap(_weizmann_scores("weizmann_n20", "ddpm", 20),
                                              _weizmann_scores("weizmann_large_batch_n20", "ddpm-large-batch", 20)),
    "large_batch.rule_23": lambda: mean_std(_test_scores("weizmann_large_batch_rule_n20", "large_batch")),
    "large_batch.rule_23_reference": lambda: mean_std(_test_scores("weizmann_large_batch_rule_n20", "baseline")),
    "large_batch.linear": lambda: mean_std(_test_scores("weizmann_large_batch_linear_lr_n20", "large_batch")),
    "large_batch.linear_reference": lambda: mean_std(_test_scores("weizmann_large_batch_linear_lr_n20", "baseline")),
    "large_batch.cv_gap": lambda: _mean_gap(_rule_test("reference"), _rule_test("chosen")),
    # history.md: guided filter and flips (weizmann_levers_n20.json)
    "levers.cv_guided": lambda: f"{load('weizmann_levers_n20')['cv']['choice']['candidates_cv_miou']['guided']:.1f}",
    "levers.cv_vote": lambda: f"{load('weizmann_levers_n20')['cv']['choice']['candidates_cv_miou']['baseline']:.1f}",
    "levers.cv_flip": lambda: f"{load('weizmann_levers_n20')['cv']['choice']['candidates_cv_miou']['flip']:.1f}",
    "levers.cv_both": lambda: f"{load('weizmann_levers_n20')['cv']['choice']['candidates_cv_miou']['flip+guided']:.1f}",
    "levers.test_guided": lambda: mean_std(_test_scores("weizmann_levers_n20", "guided")),
    "levers.test_vote": lambda: mean_std(_test_scores("weizmann_levers_n20", "baseline")),
    "levers.choice": lambda: "radius {radius}, eps {eps:g}".format(
        **load("weizmann_levers_n20")["cv"]["choice"]["guided"]),
    # history.md: extraction and the activation cache (extract.json, gridsearch.json)
    "extract.reference": lambda: "{seconds_per_image:.2f} s/image and {output_MB_per_image:.1f} MB per image".format(
        **rows_by(load("extract"), method="reference")[0]),
    "extract.ours": lambda: "{seconds_per_image:.2f} s/image and {output_MB_per_image:.1f} MB per image".format(
        **rows_by(load("extract"), method="ours")[0]),
    "extract.ratio": lambda: "{:.2f}× faster, {:.0f}× smaller".format(
        rows_by(load("extract"), method="ours")[0]["speedup_vs_reference"],
        rows_by(load("extract"), method="reference")[0]["output_MB_per_image"]
        / rows_by(load("extract"), method="ours")[0]["output_MB_per_image"]),
    "extract.max_diff": lambda: f"{rows_by(load('extract'), method='ours')[0]['max_abs_diff_vs_reference']:.4f}",
    "gridsearch.rows": lambda: " / ".join(str(r["forward_rows"]) for r in load("gridsearch")["rows"][:2]),
    "gridsearch.saved": lambda: "{:.0f} %".format(100 * (1 - load("gridsearch")["rows"][1]["forward_rows"]
                                                          / load("gridsearch")["rows"][0]["forward_rows"])),
    "gridsearch.seconds": lambda: " / ".join(f"{r['seconds']:.0f} s" for r in load("gridsearch")["rows"]),
    "gridsearch.load": lambda: str(load("gridsearch")["machine"]["load_average_1min"]),
    # history.md: CPU speed (cpu_inference*.json, cpu_training.json)
    "cpu.demo": lambda: _cpu_speedup("demo"),
    "cpu.predict": lambda: _cpu_speedup("predict"),
    "cpu.spread": lambda: "baseline demo {:.0f}–{:.0f} s, predict {:.0f}–{:.0f} s".format(
        min(rows_by(load("cpu_inference"), command="demo")[0]["baseline_s"]),
        max(rows_by(load("cpu_inference"), command="demo")[0]["baseline_s"]),
        min(rows_by(load("cpu_inference"), command="predict")[0]["baseline_s"]),
        max(rows_by(load("cpu_inference"), command="predict")[0]["baseline_s"])),
    "cpu.load": lambda: "{:.1f}–{:.1f}".format(load("cpu_inference")["load_average_before"][0],
                                              load("cpu_inference")["load_average_after"][0]),
    "cpu.profile_total": lambda: _profile("total"),
    "cpu.profile_imports": lambda: _profile("import torch", "import diffusers"),
    "cpu.profile_diffusers": lambda: _profile("import diffusers"),
    "cpu.profile_features": lambda: _profile("features of"),
    "cpu.profile_train": lambda: _profile("train the ensemble"),
    "cpu.profile_probabilities": lambda: _profile("members' probabilities"),
    "cpu.profile_guided": lambda: _profile("guided filter"),
    "cpu.profile_outputs": lambda: _profile("uncertainty maps", "write PNGs", "draw overlays"),
    "cpu.bf16_forward": lambda: _variant("cpu_inference_variants", threads=1, autocast="bfloat16", channels_last=False,
                                         compile=False),
    "cpu.channels_last_forward": lambda: _variant("cpu_inference_variants", threads=1, autocast=None,
                                                  channels_last=True, compile=False),
    "cpu.compile_forward": lambda: _variant("cpu_inference_variants", threads=1, autocast="bfloat16", compile=True),
    "cpu.guided_bf16": lambda: _accuracy("guided", "bf16"),
    "cpu.guided_fp32": lambda: _accuracy("guided", "fp32"),
    "cpu.guided_gap": lambda: f"{load('cpu_inference_accuracy')['bf16_minus_fp32_points']['guided']:+.2f}",
    "cpu.vote_bf16": lambda: _accuracy("vote", "bf16"),
    "cpu.vote_fp32": lambda: _accuracy("vote", "fp32"),
    "cpu.vote_gap": lambda: f"{load('cpu_inference_accuracy')['bf16_minus_fp32_points']['vote']:+.2f}",
    "cpu.paired_range": lambda: "{:+.2f} to {:+.2f}".format(*(lambda d: (min(d), max(d)))(
        [b - f for m in load("cpu_inference_accuracy")["miou"].values() for b, f in zip(m["bf16"], m["fp32"])])),
    "cpu.train_bf16": lambda: "**{bf16_speedup:.2f}×** the steps per second of fp32 ({bf16_seconds_per_step:.2f} vs "
                              "{fp32_seconds_per_step:.2f} s/step".format(**load("cpu_training")["summary"]),
    "cpu.train_loss": lambda: "{bf16_mean_loss_last_third:.4f} vs {fp32_mean_loss_last_third:.4f}".format(
        **load("cpu_training")["summary"]),
    "cpu.train_channels_last": lambda: "{} in fp32; {} vs {} in bf16".format(
        _variant("cpu_training", "step_variants", threads=1, autocast="fp32", channels_last=True),
        _variant("cpu_training", "step_variants", threads=1, autocast="bf16", channels_last=True),
        _variant("cpu_training", "step_variants", threads=1, autocast="bf16", channels_last=False)),
})


def _ccp_row(name, task, n):
    return rows_by(load(name), task=task, n_labeled=int(n))[0]


CCP_9500 = "ccp_ddpm_coarse_n20_std_allblocks_9500steps"


def _ccp_mean(name, task, n, field="miou_per_seed"):
    return float(np.mean(_ccp_row(name, task, n)[field]))


def _protocol_test(name):
    return load(name)["test"]["rows"][0]


def _standardize_gain(name):
    gains = []
    for c in _cv_cells(name, "1", standardize=True):
        raw = [d for d in _cv_cells(name, "1", standardize=False)
               if d["blocks"] == c["blocks"] and d["steps"] == c["steps"]]
        gains.append(c["cv_miou"] - raw[0]["cv_miou"])
    return f"{min(gains):.1f}–{max(gains):.1f}"


def _all_blocks_gain(name):
    gains = [c["cv_miou"] - d["cv_miou"] for c in _cv_cells(name, "1", standardize=True, blocks=12)
             for d in _cv_cells(name, "1", standardize=True, blocks=3) if d["steps"] == c["steps"]]
    return f"{min(gains):.1f}–{max(gains):.1f}"


def _per_class(iou, keys=None, digits=1):
    keys = keys or sorted(iou, key=lambda k: -iou[k])
    return ", ".join(f"{CCP_CLASS_NAMES.get(k, k)} {iou[k]:.{digits}f}" for k in keys)


def _per_class_change(a, b, keys):
    ia, ib = _protocol_test(a)["per_class_iou"], _protocol_test(b)["per_class_iou"]
    return ", ".join(f"{CCP_CLASS_NAMES.get(k, k)} {ia[k]:.1f} → {ib[k]:.1f}" for k in keys)


def _hours(name):
    """CPU hours of the CCP backbone a protocol record used, as compute_curve.py measured them."""
    points = [p for p in load("compute_curve")["points"] if p.get("source") == f"benchmarks/results/{name}.json"]
    measured = points and points[0].get("cpu_hours_source") == "measured"
    return f"{points[0]['cpu_hours']:.2f}" if measured else "not recorded"


def _top_classes(iou, k):
    ranked = sorted(((v, c) for c, v in iou.items() if v is not None), reverse=True)[:k]
    return ", ".join(f"{c} {v:.1f}" for v, c in ranked)


FIGURES.update({
    # history.md: CCP, settings chosen on test photos (ccp.py records)
    "ccp.skimage_coarse_20": lambda: mean_std(_ccp_row("ccp_skimage_coarse", "coarse", 20)["miou_per_seed"]),
    "ccp.coarse_20_mean": lambda: f"{_ccp_mean('ccp_ddpm_coarse_std_allblocks_6192steps', 'coarse', 20):.1f}",
    "ccp.coarse_20_gap": lambda: "{:.0f}".format(_ccp_mean("ccp_ddpm_coarse_std_allblocks_6192steps", "coarse", 20)
                                                - _ccp_mean("ccp_skimage_coarse", "coarse", 20)),
    "ccp.coarse_20_classes": lambda: (lambda iou: _per_class({k: v for k, v in iou.items() if v > 5}) + ", and ≤ "
                                      + f"{max(v for v in iou.values() if v <= 5):.1f} for "
                                      + ", ".join(CCP_CLASS_NAMES.get(k, k) for k, v in iou.items() if v <= 5))(
        _ccp_row("ccp_ddpm_coarse_std_allblocks_6192steps", "coarse", 20)["per_class_iou"]),
    "ccp.9500": lambda: mean_std(_ccp_row(CCP_9500, "coarse", 20)["miou_per_seed"]),
    "ccp.9500_mean": lambda: f"{_ccp_mean(CCP_9500, 'coarse', 20):.1f}",
    "ccp.9500_pixel": lambda: f"{_ccp_mean(CCP_9500, 'coarse', 20, 'pixel_accuracy_per_seed'):.1f}",
    "ccp.30test": lambda: "{:.1f} vs {:.1f}".format(
        np.mean(_ccp_row("ccp_ddpm_coarse_n20_30test_9500steps", "coarse", 20)["miou_per_seed"]),
        np.mean(_ccp_row("ccp_ddpm_coarse_n20_30test_noise1", "coarse", 20)["miou_per_seed"])),
    # history.md: CCP under the protocol (ccp_cv_protocol*.json)
    "ccp.protocol": lambda: mean_std(_protocol_test("ccp_cv_protocol")["miou_per_seed"]),
    "ccp.protocol_pixel": lambda: f"{np.mean(_protocol_test('ccp_cv_protocol')['pixel_accuracy_per_seed']):.1f}",
    "ccp.protocol_steps": lambda: f"{_training(load('ccp_cv_protocol'))[0]:,}",
    "ccp.protocol_hours": lambda: _hours("ccp_cv_protocol"),
    "ccp.protocol_cv": lambda: f"{max(c['cv_miou'] for c in load('ccp_cv_protocol')['cv_table']):.2f}",
    "ccp.protocol_stages": lambda: ("stage 1's winner {:.1f}, with 2,000 px {:.1f}, with 4 noise draws {:.1f}, "
                                    "both {:.1f}, the filter {:+.1f}").format(
        max(c["cv_miou"] for c in _cv_cells("ccp_cv_protocol", "1")),
        _cv_cells("ccp_cv_protocol", "2", max_pixels_per_image=2000)[0]["cv_miou"],
        _cv_cells("ccp_cv_protocol", "2", n_noise_samples=4)[0]["cv_miou"],
        _cv_cells("ccp_cv_protocol", "3")[0]["cv_miou"],
        _cv_cells("ccp_cv_protocol", "4")[0]["cv_miou"] - max(
            c["cv_miou"] for c in load("ccp_cv_protocol")["cv_table"] if not c["stage"].startswith("4"))),
    "ccp.protocol_standardize": lambda: _standardize_gain("ccp_cv_protocol"),
    "ccp.protocol_all_blocks": lambda: _all_blocks_gain("ccp_cv_protocol"),
    "ccp.protocol_cv_minutes": lambda: f"{load('ccp_cv_protocol')['cv_seconds'] / 60:.0f} minutes",
    "ccp.5709_steps": lambda: f"{_training(load('ccp_cv_protocol_5709steps'))[0]:,}",
    "ccp.5709_hours": lambda: _hours("ccp_cv_protocol_5709steps"),
    "ccp.5709_cv": lambda: f"{max(c['cv_miou'] for c in load('ccp_cv_protocol_5709steps')['cv_table']):.2f}",
    "ccp.5709": lambda: mean_std(_protocol_test("ccp_cv_protocol_5709steps")["miou_per_seed"]),
    "ccp.5709_pixel": lambda: f"{np.mean(_protocol_test('ccp_cv_protocol_5709steps')['pixel_accuracy_per_seed']):.1f}",
    "ccp.320_hours": lambda: _hours("ccp_cv_protocol_320steps"),
    "ccp.320_first": lambda: mean_std(load("ccp_cv_protocol_320steps")["earlier_test_scoring"]["miou_per_seed"]),
    "ccp.320": lambda: mean_std(_protocol_test("ccp_cv_protocol_320steps")["miou_per_seed"]),
    "ccp.320_below_9500": lambda: "{:.1f}".format(
        np.mean(_ccp_row("ccp_ddpm_coarse_n20_std_allblocks_9500steps", "coarse", 20)["miou_per_seed"])
        - np.mean(_protocol_test("ccp_cv_protocol_320steps")["miou_per_seed"])),
    "ccp.classes_change": lambda: _per_class_change("ccp_cv_protocol", "ccp_cv_protocol_5709steps",
                                                    ("skin", "hair", "bag", "footwear")),
    "ccp.classes_flat": lambda: _per_class_change("ccp_cv_protocol", "ccp_cv_protocol_5709steps",
                                                  ("dress", "legwear", "hat_glasses", "accessories")),
    "ccp.fine_20": lambda: mean_std(_ccp_row("ccp_ddpm_fine_std_allblocks_6192steps", "fine", 20)["miou_per_seed"]),
    "ccp.fine_skimage_20": lambda: mean_std(_ccp_row("ccp_skimage_fine", "fine", 20)["miou_per_seed"]),
    "ccp.fine_50_vs_20": lambda: "{:.1f} vs {:.1f}".format(
        np.mean(_ccp_row("ccp_ddpm_fine_std_allblocks_6192steps", "fine", 50)["miou_per_seed"]),
        np.mean(_ccp_row("ccp_ddpm_fine_std_allblocks_6192steps", "fine", 20)["miou_per_seed"])),
    "ccp.fine_20_classes": lambda: _top_classes(
        _ccp_row("ccp_ddpm_fine_std_allblocks_6192steps", "fine", 20)["per_class_iou"], 5),
})


def _backbone_series(preset="64"):
    """``"76.3 at 0.33 CPU hours, 82.3 at 0.65, ..."``: test mIoU against CPU hours, snapshots of one run."""
    entries = sorted((b for b in load("weizmann_backbones")["backbones"].values() if str(b.get("preset")) == preset),
                     key=lambda b: b["step"])
    parts = [f"{np.mean(b['test_miou_per_seed']):.1f} at {b['cpu_hours']:.2f}" for b in entries]
    return parts[0] + " CPU hours, " + ", ".join(parts[1:])


def _backbone_slope(step_a, step_b, preset="64"):
    a, b = _backbone_entry(preset, step_a), _backbone_entry(preset, step_b)
    gain = np.mean(b["test_miou_per_seed"]) - np.mean(a["test_miou_per_seed"])
    return f"{gain / (b['cpu_hours'] - a['cpu_hours']):.0f}"


def _seconds_per_step(preset, step):
    b = _backbone_entry(preset, step)
    return f"{b['cpu_hours'] * 3600 / b['step']:.2f}"


FIGURES.update({
    "bb.series": _backbone_series,
    "bb.slope_first": lambda: _backbone_slope(1000, 2000),
    "bb.cv_dip": lambda: "{:.1f}".format(_backbone_entry("64", 4109)["cv_miou"]
                                         - _backbone_entry("64", 5605)["cv_miou"]),
    "bb.s_per_step_128": lambda: _seconds_per_step("128", 814),
    "bb.s_per_step_64": lambda: _seconds_per_step("64", 7500),
    "bb.128_vs_64": lambda: "{:.1f}".format(  # the 64² run's curve, interpolated at the 128² run's CPU hours
        np.interp(_backbone_entry("128", 814)["cpu_hours"],
                  *zip(*sorted((b["cpu_hours"], np.mean(b["test_miou_per_seed"]))
                               for b in load("weizmann_backbones")["backbones"].values()
                               if str(b.get("preset")) == "64")))
        - np.mean(_backbone_entry("128", 814)["test_miou_per_seed"])),
})


def _curve_point(label):
    return next(p for p in load("compute_curve")["points"] if p["label"] == label)


def _ccp_rate(name_a, name_b):
    """Test mIoU points per CPU hour between two protocol records (CPU hours from compute_curve.json)."""
    a, b = _protocol_test(name_a)["miou_per_seed"], _protocol_test(name_b)["miou_per_seed"]
    return f"{(np.mean(b) - np.mean(a)) / (float(_hours(name_b)) - float(_hours(name_a))):.1f}"


def _settings_gain(name):
    """CV points the protocol's later stages (pixels, noise draws, the filter) added to stage 1's winner."""
    cells = load(name)["cv_table"]
    return max(c["cv_miou"] for c in cells) - max(c["cv_miou"] for c in cells if c["stage"].startswith("1"))


def _tutorial_fine(class_weight):
    run = [r for r in load("tutorial_ccp_quick")["runs"]
           if r["task"] == "fine" and r.get("class_weight") == class_weight][0]
    return f"{100 * run['miou']:.1f}"


FIGURES.update({
    "large_batch.seed0_reference": lambda: "{:.1f} and {:.1f}".format(
        _test_scores("weizmann_large_batch_rule_n20", "baseline")[0],
        _test_scores("weizmann_large_batch_linear_lr_n20", "baseline")[0]),
    "tutorial.time": lambda: "{:.0f} min {:.0f} s measured on the shared one, load average {}".format(
        *divmod(load("tutorial_ccp_quick")["seconds_total"], 60),
        load("tutorial_ccp_quick")["machine"]["load_average_1min"]),
    "tutorial.class_weight": lambda: f"{_tutorial_fine(None)} → {_tutorial_fine('balanced')}",
    "curve.random_init": lambda: f"{np.mean(_curve_point('random-init UNet')['miou_per_seed']):.1f}",
    "curve.cpu_seconds_per_step": lambda: f"{load('compute_curve')['cpu_seconds_per_step']:.2f}",
    "curve.320_wall_vs_cpu": lambda: "{:.0f}× (the 320-step run: {:.2f} h of wall time for {:.2f} h of CPU)".format(
        _curve_point("protocol, step 320")["core_hours"] / _curve_point("protocol, step 320")["cpu_hours"],
        _curve_point("protocol, step 320")["core_hours"], _curve_point("protocol, step 320")["cpu_hours"]),
    "curve.fp32_2000_hours": lambda: f"{2000 * load('compute_curve')['cpu_seconds_per_step'] / 3600:.2f}",
    "ccp.rate_first": lambda: _ccp_rate("ccp_cv_protocol_320steps", "ccp_cv_protocol"),
    "ccp.rate_after": lambda: _ccp_rate("ccp_cv_protocol", "ccp_cv_protocol_5709steps"),
    "ccp.settings_gain": lambda: "{:.1f} CV points at 3,616 steps, {:.1f} at 5,709".format(
        _settings_gain("ccp_cv_protocol"), _settings_gain("ccp_cv_protocol_5709steps")),
    "bb.bundled_range": lambda: "{:.1f}–{:.1f}".format(*(lambda v: (min(v), max(v)))(
        [np.mean(_backbone_entry("64", s)["test_miou_per_seed"]) for s in (6500, 7000, 7500)])),
})


def _curve_hours(label, field):
    return _curve_point(label)[field]


CCP_6192, CCP_9500_LABEL = "earlier run, 6,192 steps", "earlier run resumed to 9,500 steps"
FP32_2000_LABEL = "bundled model exported 2026-11-25 (fp32), 2000 steps"


def _middle_slopes(low=0.9, high=2.1, preset="64"):
    """Test mIoU points per CPU hour between consecutive snapshots of one run, from ``low`` to ``high`` h."""
    entries = sorted((b for b in load("weizmann_backbones")["backbones"].values()
                      if str(b.get("preset")) == preset and low <= b["cpu_hours"] <= high), key=lambda b: b["step"])
    slopes = [(np.mean(b["test_miou_per_seed"]) - np.mean(a["test_miou_per_seed"])) / (b["cpu_hours"] - a["cpu_hours"])
              for a, b in zip(entries, entries[1:])]
    return f"{min(slopes):.1f}–{max(slopes):.1f}"


def _bundled_training():
    """The bundled model's own training record (train_info.json, written by train-ddpm)."""
    return json.loads((ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm" / "train_info.json").read_text())


def _cpu_inference_earlier(name):
    """An earlier version of cpu_inference.json, restored from git into archive/ (see its INDEX.md)."""
    r = load(f"archive/{name}")
    speed = {row["command"]: row["speedup"] for row in r["rows"]}
    return (f"at commit {r['current_commit']}, 1-minute load {r['load_average_before'][0]:.1f} before and "
            f"{r['load_average_after'][0]:.1f} after, demo {speed['demo']:.2f}× and predict {speed['predict']:.2f}×")


def _ccp_seeds(name, task, n):
    return mean_std(_ccp_row(name, task, n)["miou_per_seed"])


def _ccp_minutes(name):
    return f"{load(name)['timings']['total_s'] / 60:.0f} min"


FIGURES.update({
    # history.md / tutorial_ccp.md: training times that only compute_curve.json holds (flagged there when
    # they come from console output, core_hours_backed: false)
    "curve.fp32_2000_wall": lambda: f"{_curve_hours(FP32_2000_LABEL, 'core_hours'):.2f}",
    "curve.6192_core_hours": lambda: f"{_curve_hours(CCP_6192, 'core_hours'):.2f}",
    "curve.9500_extra": lambda: "{:.0f} more minutes with 2 threads, {:.1f} steps/s".format(
        (_curve_hours(CCP_9500_LABEL, "core_hours") - _curve_hours(CCP_6192, "core_hours")) * 60 / 2,
        (9500 - 6192) / ((_curve_hours(CCP_9500_LABEL, "core_hours") - _curve_hours(CCP_6192, "core_hours")) * 3600 / 2)),
    "curve.6192_cpu_hours": lambda: f"{_curve_hours(CCP_6192, 'cpu_hours'):.1f}",
    "curve.9500_cpu_hours": lambda: f"{_curve_hours(CCP_9500_LABEL, 'cpu_hours'):.1f}",
    "ccp.320_to_protocol": lambda: "{:,} steps more ({:.2f} more CPU hours)".format(
        _training(load("ccp_cv_protocol"))[0] - _training(load("ccp_cv_protocol_320steps"))[0],
        float(_hours("ccp_cv_protocol")) - float(_hours("ccp_cv_protocol_320steps"))),
    "bb.slopes_middle": _middle_slopes,
    "bb.fold_spread": lambda: "{:.1f}–{:.1f}".format(*(lambda s: (min(s), max(s)))(
        [max(b["cv_fold_miou"]) - min(b["cv_fold_miou"]) for b in (_backbone_entry("64", s) for s in (6500, 7000, 7500))])),
    "bb.last_session_cpu_minutes": lambda: f"{_bundled_training()['sessions'][-1]['cpu_seconds'] / 60:.0f}",
    # history.md: earlier versions of cpu_inference.json
    "cpu.earlier_12a936f": lambda: _cpu_inference_earlier("cpu_inference_12a936f"),
    "cpu.earlier_d4ab11b": lambda: _cpu_inference_earlier("cpu_inference_d4ab11b"),
    # tutorial_ccp.md
    "ccp.coarse_20": lambda: _ccp_seeds("ccp_ddpm_coarse_std_allblocks_6192steps", "coarse", 20),
    "ccp.noise4": lambda: _ccp_seeds("ccp_ddpm_coarse_n20_30test_noise4", "coarse", 20),
    "ccp.noise1": lambda: _ccp_seeds("ccp_ddpm_coarse_n20_30test_noise1", "coarse", 20),
    "ccp.noise1_seed0": lambda: f"{_ccp_row('ccp_ddpm_coarse_n20_30test_noise1', 'coarse', 20)['miou_per_seed'][0]:.1f}",
    "ccp.earlier_130": lambda: " / ".join(_ccp_seeds("ccp_ddpm_coarse", "coarse", n) for n in (10, 20, 50)),
    "ccp.fine_400_10test": lambda: " / ".join(_ccp_seeds("ccp_ddpm_fine_400steps_10test", "fine", n)
                                             for n in (10, 20, 50)),
    "ccp.minutes": lambda: "ddpm coarse {}, fine {}; skimage coarse {}, fine {}".format(
        *(_ccp_minutes(n) for n in ("ccp_ddpm_coarse_std_allblocks_6192steps", "ccp_ddpm_fine_std_allblocks_6192steps",
                                    "ccp_skimage_coarse", "ccp_skimage_fine"))),
})
BACKBONE_FIELDS["wall_minutes"] = lambda b: f"{b['train_seconds'] / 60:.0f}"


# -- self_training.md (self_training_*.json) ------------------------------------------------------------

def _self_training_cv(name, label):
    return next(c for c in load(name)["cv"] if c["label"] == label)


def _self_training_gain(name="self_training_weizmann"):
    """The rule's numbers: the paired CV gain of the chosen candidate, its standard error, the fold gains."""
    r = load(name)
    chosen = r["chosen"]
    gains = np.subtract(_self_training_cv(name, chosen["best_self_training"])["fold_miou"],
                        _self_training_cv(name, "rounds 0")["fold_miou"])
    return "{:+.2f} points by CV with a paired standard error of {:.2f} (fold gains {})".format(
        chosen["paired_cv_gain"], chosen["paired_cv_gain_se"], ", ".join(f"{g:+.1f}" for g in gains))


def _self_training_loads(name):
    r = load(name)
    loads = [run["load_average_after"] for run in r["runs"]] + [
        r[k]["load_average_after"] for k in ("test", "test_baseline") if k in r]
    return f"{min(loads):.1f}–{max(loads):.1f}"


def _self_training_ccp_folds():
    """Each fold run of the CCP record, and the CPU time of self-training against the plain fit."""
    r = load("self_training_ccp")
    folds, ratios = {}, []
    for run in r["runs"]:
        folds.setdefault(run["fold"], []).append(run)
    for runs in folds.values():
        plain = [x for x in runs if x["params"]["n_rounds"] == 0]
        ratios += [x["fit_cpu_seconds"] / plain[0]["fit_cpu_seconds"] for x in runs if plain and x is not plain[0]]
    names = {0: "`n_rounds=0`"}
    text = "; ".join(f"fold {fold}: " + ", ".join(
        f"{x['miou']:.1f} ({names.get(x['params']['n_rounds'], 'keep ' + str(x['params'].get('keep_fraction')))})"
        for x in runs) for fold, runs in folds.items())
    return f"{text}; each self-training fit at {min(ratios):.1f}–{max(ratios):.1f} times the CPU time of the plain one"


FIGURES.update({
    "self_training.load": lambda: _self_training_loads("self_training_weizmann"),
    "self_training.gain": _self_training_gain,
    "self_training.keep_tie": lambda: "{:.2f}".format(abs(
        _self_training_cv("self_training_weizmann", "rounds 1 keep 0.9")["cv_miou"]
        - _self_training_cv("self_training_weizmann", "rounds 1 keep 0.5")["cv_miou"])),
    "self_training.test": lambda: f"{load('self_training_weizmann')['test']['miou']:.1f}",
    "self_training.test_baseline": lambda: f"{load('self_training_weizmann')['test_baseline']['miou']:.1f}",
    "self_training.cpu_ratio": lambda: "{:.1f}× the plain fit's CPU time ({:.1f}× in the CV folds)".format(
        load("self_training_weizmann")["test"]["fit_cpu_seconds"]
        / load("self_training_weizmann")["test_baseline"]["fit_cpu_seconds"],
        _self_training_cv("self_training_weizmann", "rounds 1 keep 0.9")["fit_cpu_seconds_mean"]
        / _self_training_cv("self_training_weizmann", "rounds 0")["fit_cpu_seconds_mean"]),
    "self_training.training_pixels": lambda: " and ".join(sorted(
        {f"{run['n_training_pixels']:,}" for run in load("self_training_weizmann")["runs"]
         if run["params"]["n_rounds"] > 0})),
    "self_training.ccp_gain": lambda: _self_training_gain("self_training_ccp"),
    "self_training.ccp_chosen": lambda: "`n_rounds={n_rounds}, keep_fraction={keep_fraction}`".format(
        **load("self_training_ccp")["chosen"]["params"]) if load("self_training_ccp")["chosen"]["worth_it"]
        else "`n_rounds=0`",
    "self_training.ccp_test": lambda: f"{load('self_training_ccp')['test']['miou']:.1f}",
    "self_training.ccp_test_baseline": lambda: f"{load('self_training_ccp')['test_baseline']['miou']:.1f}",
    "self_training.ccp_test_images": lambda: f"{load('self_training_ccp')['test']['n_images']}",
    "self_training.ccp_cpu_ratio": lambda: "{:.1f}×".format(
        load("self_training_ccp")["test"]["fit_cpu_seconds"] / load("self_training_ccp")["test_baseline"]["fit_cpu_seconds"]),
    "self_training.ccp_load": lambda: _self_training_loads("self_training_ccp"),
    "self_training.ccp_folds": _self_training_ccp_folds,
})


# -- model_selection.md and README (select_weizmann_n20.json, select_ccp_n20.json) --------------------------

def _select_tests(method, name="select_weizmann_n20"):
    return [f for f in load(name)["test_fits"] if f["method"] == method]


def _select_load(name="select_weizmann_n20"):
    r = load(name)
    s = r["selection"]
    loads = [s["load_average_before"][0], s["load_average_after"][0]] + [f["load_average"][0] for f in r["test_fits"]]
    return f"{min(loads):.1f}–{max(loads):.1f}"


def _select_search(name="select_weizmann_n20"):
    s = load(name)["selection"]
    cv = s["cv_results"]
    seconds = "the call took {total:.0f} s (search {search:.0f} s, refit {refit:.0f} s)".format(**s["seconds"])
    if s["stopped_by_budget"]:
        seconds += (f"; at {min(cv['seconds']):.0f}–{max(cv['seconds']):.0f} s a candidate the budget stopped the "
                    f"search after {len(cv['stage'])} of its {len(cv['stage']) + len(s['skipped'])} candidates")
    return seconds


def _select_cv(name="select_weizmann_n20"):
    cv = load(name)["selection"]["cv_results"]
    best = int(np.argmax(cv["mean_test_score"]))
    return (f"CV mIoU {100 * cv['mean_test_score'][best]:.1f} against {100 * cv['mean_test_score'][0]:.1f} for the "
            f"start, fold std {100 * cv['fold_std_test_score'][best]:.1f}")


def _select_gain(name):
    """``"X ± s (n seeds) against Y ± s (n seeds) for the plain defaults"`` of a select record's test fits."""
    return "{} against {} for the plain defaults".format(
        *(mean_std([f["miou"] for f in _select_tests(m, name)]) for m in ("selected", "defaults")))


def _select_classes(name, classes):
    """Mean IoU of ``classes`` (selected vs defaults) over a select record's seeds (None: class absent)."""
    def mean_iou(method):
        return np.mean([mc.mean_iou(f["per_class_iou"], classes) for f in _select_tests(method, name)])
    return f"{mean_iou('selected'):.1f} vs {mean_iou('defaults'):.1f}"

FIGURES.update({
    "select.load": _select_load,
    "select.search": _select_search,
    "select.cv": _select_cv,
    "select.test": lambda: mean_std([f["miou"] for f in _select_tests("selected")]),
    "select.defaults": lambda: mean_std([f["miou"] for f in _select_tests("defaults")]),
    "select.horse": lambda: _select_classes("select_weizmann_n20", ("horse",)),
    "select.gain": lambda: _select_gain("select_weizmann_n20"),
    "select_ccp.load": lambda: _select_load("select_ccp_n20"),
    "select_ccp.search": lambda: _select_search("select_ccp_n20"),
    "select_ccp.cv": lambda: _select_cv("select_ccp_n20"),
    "select_ccp.gain": lambda: _select_gain("select_ccp_n20"),
    "select_ccp.rare": lambda: _select_classes("select_ccp_n20", mc.RARE),
})


# -- security.md (soak.json, soak_frequent_kills.json) ---------------------------------------------------

def _soak_loads(name):
    r = load(name)
    loads = [r["machine"]["load_average_1min"], r["quiet"]["load_average_1min_before"],
             r["faulty"]["load_average_1min_before"]]
    return f"{min(loads):.1f}–{max(loads):.1f}"


def _soak_outcome(completeness):
    """What the output folder held, in words, from the record's checks (nothing claimed that it lacks)."""
    c = completeness
    whole = ("every one of the {images} images has exactly one whole label file" if c["every_image_exactly_one_whole_output"]
             else "{label_files} of the {images} images have a label file ({n_broken} broken)").format(**c)
    missing = "none is missing" if not c["n_missing"] else f"{c['n_missing']} missing"
    temporary = ("no temporary file is left" if not c["temporary_files_left"]
                 else f"{len(c['temporary_files_left'])} temporary file(s) left")
    same = c["labels_differing_from_quiet_run"]
    labels = ("the labels equal those of the quiet run pixel for pixel" if not same["pixel_fraction"]
              else f"labels differ from the quiet run's in {same['pixel_fraction']:.2e} of the pixels")
    return f"{whole}, {missing}, {temporary}; {labels}"


def _soak_run(name):
    r = load(name)
    lo, hi = r["settings"]["kill_every_seconds"]
    return (f"kills every {lo:.0f}–{hi:.0f} s ({r['faulty']['n_kills']} kills), the interrupt at "
            f"{r['faulty']['interrupted_run']['interrupted']['labels_written']} labels")


FIGURES.update({
    "soak.load": lambda: _soak_loads("soak"),
    "soak.run": lambda: _soak_run("soak"),
    "soak.outcome": lambda: _soak_outcome(load("soak")["completeness"]),
    "soak.throughput": lambda: "{under_faults:.2f} images/s against {quiet:.2f}".format(
        **load("soak")["images_per_second"]),
    "soak_frequent.load": lambda: f"{load('soak_frequent_kills')['faulty']['load_average_1min_before']:.1f}",
    "soak_frequent.run": lambda: _soak_run("soak_frequent_kills"),
    "soak_frequent.stopped": lambda: ("the resumed phase had done {labels_after} of the {of} images after {kills} "
                                      "kills when the script's {minutes:.0f}-minute limit stopped it").format(
        **load("soak_frequent_kills")["faulty"]["resumed_run"], kills=load("soak_frequent_kills")["faulty"]["n_kills"],
        minutes=load("soak_frequent_kills")["faulty"]["resumed_run"]["seconds"] / 60),
    "soak_frequent.remaining": lambda: str(load("soak_frequent_kills")["completeness"]["n_missing"]),
    "soak_frequent.outcome": lambda: _soak_outcome(load("soak_frequent_kills")["completeness_after_fault_free_resume"]),
})


# -- latent_backbones.md (latent_memory.json, latent_extract.json) ---------------------------------------

def _latent_host_gb():
    """The float32 components a host keeps: UNet, VAE and text encoder weights (arithmetic on the shapes)."""
    w = load("latent_memory")["weights_bytes"]
    return _gb(w["unet_float32"] + w["vae_float32"] + w["text_encoder_float32"])


FIGURES.update({
    "latent.host_fp32": _latent_host_gb,
    "latent.extract_load": lambda: "{:.0f}–{:.0f}".format(min(load("latent_extract")["load_average"]),
                                                          max(load("latent_extract")["load_average"])),
    "latent.extract_peak": lambda: _gb(load("latent_extract")["peak_rss_bytes"]),
})


# -- tutorial_ccp.md: the timing table (timings of the ccp.py records) ----------------------------------

def _ccp_fit_ranges(name):
    """``"16–19 s (n = 10), ..."``: the fits of the seeds at each n, from a ccp.py record's ``ddpm_fit_s``."""
    by_n = {}
    for key, seconds in load(name)["timings"]["ddpm_fit_s"].items():
        by_n.setdefault(int(key.split("/")[1].removeprefix("n=")), []).append(seconds)
    return ", ".join(f"{min(s):.0f}–{max(s):.0f} s (n = {n})" for n, s in sorted(by_n.items()))


def _ccp_predict_per_photo(name):
    """Test prediction seconds per photo and ensemble: the record's total over photos × (n values × seeds)."""
    r = load(name)
    ensembles = len(r["settings"]["n_labeled"]) * len(r["settings"]["seeds"])
    return f"{r['timings']['test_ddpm_predict_s'] / (r['n_test_images'] * ensembles):.1f} s"


CCP_COARSE_6192, CCP_FINE_6192 = "ccp_ddpm_coarse_std_allblocks_6192steps", "ccp_ddpm_fine_std_allblocks_6192steps"

FIGURES.update({
    "tutorial.machine": lambda: "{cpu}, {cpu_cores} cores, {ram_gib:.0f} GiB RAM".format(
        **{**load(CCP_COARSE_6192)["machine"], "cpu": load(CCP_COARSE_6192)["machine"]["cpu"].replace(
            "Intel(R) Xeon(R) Processor", "Intel Xeon")}),
    "tutorial.features": lambda: "{:.0f} s for the {} `labeled_pool` photos; {:.2f} s per test photo".format(
        load(CCP_COARSE_6192)["timings"]["ddpm_extract_pool_s"], max(load(CCP_COARSE_6192)["settings"]["n_labeled"]),
        load(CCP_COARSE_6192)["timings"]["test_ddpm_features_s"] / load(CCP_COARSE_6192)["n_test_images"]),
    "tutorial.fit_coarse": lambda: _ccp_fit_ranges(CCP_COARSE_6192),
    "tutorial.fit_fine": lambda: _ccp_fit_ranges(CCP_FINE_6192),
    "tutorial.predict": lambda: "{} per coarse 3-MLP ensemble; {} per fine one".format(
        _ccp_predict_per_photo(CCP_COARSE_6192), _ccp_predict_per_photo(CCP_FINE_6192)),
    "curve.6192_step": lambda: f"{_curve_point(CCP_6192)['step']:,}",
    "ccp.fine_scored_classes": lambda: "{} scored over the seeds instead of {}".format(
        *(sum(v is not None for v in _ccp_row(CCP_FINE_6192, "fine", n)["per_class_iou"].values()) for n in (50, 20))),
    "ccp.fine_20_garments": lambda: _per_class(_ccp_row(CCP_FINE_6192, "fine", 20)["per_class_iou"],
                                               ("blouse", "shirt", "jeans", "sweater", "skirt", "dress")),
})


# -- scaling.md -------------------------------------------------------------------------------------------

FIGURES.update({
    "dask.n_images": lambda: str(load("distributed_predict")["settings"]["n_images"]),
})


# -- multiclass.md (ccp_cv_protocol_chosen_backbone.json, ccp_backbones.json) ------------------------------

FIGURES.update({
    "multiclass.stage2": mc.stage2_levers,
    "multiclass.test": lambda: mean_std(_protocol_test(mc.CHOSEN)["miou_per_seed"]),
    "multiclass.rare": mc.protocol_rare,
    "multiclass.rare_5709": lambda: mc.protocol_rare("ccp_cv_protocol_5709steps"),
    "multiclass.steps": lambda: f"{_training(load(mc.CHOSEN))[0]:,}",
    "multiclass.rare_cv_default": lambda: "{:.1f}".format(
        load("rare_classes_ccp_backbone")["results"]["default"]["rare_mean_iou"]),
})
