"""Render every results table and quoted figure of README.md and docs/*.md from the JSON records.

Each table sits between two marker comments in its page::

    <!-- report:NAME -->
    ...generated...
    <!-- /report:NAME -->

and each figure quoted in running prose between two inline ones (invisible in the rendered page)::

    ... scored <!-- fig:KEY -->77.3 ± 0.4 (2 seeds)<!-- /fig --> against ...

and is rewritten from ``benchmarks/results/*.json`` by this script, so a figure cannot drift from its
record: every mean and ``±`` is computed here from the per-seed scores the record holds (``±`` = sample
standard deviation, ddof=1, with the number of seeds), and the machine, its load average, the date and
the backbone's content hash are read from the same record ("not recorded" where an older record lacks
one; nothing is guessed). tests/benchmarks/test_report.py fails when a committed page differs from a
fresh rendering. The tables are defined here (``TABLES``), the inline figures in ``_report_figures.py``
(``FIGURES``), and both read the records through ``_report_records.py``.

Examples
--------
    python benchmarks/report.py           # rewrite the marked tables and figures in README.md and docs/
    python benchmarks/report.py --check   # exit 1 (and print a diff) if a page is out of date
"""

import argparse
import difflib
import re
import sys

import numpy as np
from _report_figures import figure
from _report_multiclass import ccp_backbones, ccp_per_class, rare_classes
from _report_records import (ROOT, _cv_cells, _dask_runs, _training, backbone, date, link, load, machine,
                             mean_std, protocol_settings, rows_by, table)

PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))  # any page may hold a marked table
MARKER = re.compile(r"(<!-- report:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /report:(?P=name) -->)", re.S)
# one figure in a sentence; its text may wrap onto the next line of the paragraph, never past a blank line
INLINE = re.compile(r"(<!-- fig:(?P<key>[a-z0-9_.+-]+) -->)(?P<body>(?:(?!\n\n).)*?)(<!-- /fig -->)", re.S)


# -- the tables ---------------------------------------------------------------------------------------

CCP_HEADLINE = "ccp_cv_protocol_chosen_backbone"


def headline(prefix):
    """The README's short table: the package's default pipeline on its two data sets."""
    rows = []
    for name, n in (("weizmann_default_n5_n10", 5), ("weizmann_default_n5_n10", 10), ("weizmann_default_n20", 20)):
        r = load(name)
        ddpm, ski = rows_by(r, method="ddpm", n_labeled=n)[0], rows_by(r, method="skimage", n_labeled=n)[0]
        # the defaults of the record's day: they have changed since (docs/method.md), so say which
        cap = r.get("max_pixels_per_image")
        settings = f"package defaults of {r['date'][:10]}" + (f" ({cap:,} px per image)" if cap else "")
        rows.append((f"Weizmann horses, n = {n}", f"**{mean_std(ddpm['scores'])}**", mean_std(ski["scores"]),
                     settings, link(name, prefix)))
    # the newest run of the protocol (decided before its test was scored, whatever the score)
    ccp = load(CCP_HEADLINE)
    row = ccp["test"]["rows"][0]
    ski = rows_by(load("ccp_skimage_coarse"), n_labeled=20)[0]
    rows.append(("CCP clothing (11 classes), n = 20", f"**{mean_std(row['miou_per_seed'])}**",
                 mean_std(ski["miou_per_seed"]), "GroupKFold CV on the 20 labelled photos (backbone too)",
                 f"{link(CCP_HEADLINE, prefix)}, {link('ccp_skimage_coarse', prefix)}"))
    return table(("data set, labelled images", "DDPM features: test mIoU", "scikit-image + random forest",
                  "settings", "records"), rows)


def weizmann(prefix):
    """Every Weizmann record the docs cite: the DDPM features against scikit-image, per n."""
    out = []
    for name, label in (("weizmann_n5", "first bundled DDPM (2,000 fp32 steps), members' vote"),
                        ("weizmann_n10", "first bundled DDPM (2,000 fp32 steps), members' vote"),
                        ("weizmann_n20", "first bundled DDPM (2,000 fp32 steps), members' vote"),
                        ("weizmann_default_n5_n10_4109steps", "4,109-step bf16 DDPM, package defaults"),
                        ("weizmann_default_n20_4109steps", "4,109-step bf16 DDPM, package defaults"),
                        ("weizmann_default_n5_n10", "7,500-step bf16 DDPM (bundled now), package defaults"),
                        ("weizmann_default_n20", "7,500-step bf16 DDPM (bundled now), package defaults")):
        r = load(name)
        for n in sorted({row["n_labeled"] for row in r["rows"]}):
            ddpm, ski = rows_by(r, method="ddpm", n_labeled=n)[0], rows_by(r, method="skimage", n_labeled=n)[0]
            diff = np.mean(ddpm["scores"]) - np.mean(ski["scores"])
            out.append((n, label, mean_std(ddpm["scores"]), mean_std(ski["scores"]), f"{diff:+.1f}",
                        f"{ddpm['seconds_per_fit_and_predict']:.0f} s / {ski['seconds_per_fit_and_predict']:.0f} s",
                        backbone(r), f"{machine(r)}; {date(r)}", link(name, prefix)))
    return table(("n", "backbone, classifier", "DDPM mIoU", "scikit-image mIoU", "difference",
                  "s per fit + predict (DDPM / skimage)", "backbone hash", "machine; date", "record"), out)


def ccp_protocol(prefix):
    """CCP coarse, n = 20, under issue 16's protocol: settings by CV, then the test split."""
    out = []
    for name in ("ccp_cv_protocol_320steps", "ccp_cv_protocol", "ccp_cv_protocol_5709steps", CCP_HEADLINE):
        r = load(name)
        step, cpu_hours, sessions = _training(r)
        best = max(r["cv_table"], key=lambda c: c["cv_miou"])
        row = r["test"]["rows"][0]
        chosen = r["chosen"]
        settings = protocol_settings(chosen)
        earlier = r.get("earlier_test_scoring")
        scored = "once" if not earlier else (
            f"twice: {mean_std(earlier['miou_per_seed'])} at commit {earlier['commit']} ({earlier['stages']}), "
            "then this figure after a stage was added")
        out.append((f"{step:,}", cpu_hours, f"{best['cv_miou']:.2f}", settings, f"**{mean_std(row['miou_per_seed'])}**",
                    scored, backbone(r), f"{machine(r)}; {date(r)}", link(name, prefix)))
    return table(("backbone steps", "CPU hours", "best CV mIoU", "settings chosen by CV", "test mIoU",
                  "test split scored", "backbone hash", "machine; date", "record"), out)


def ccp_test_selected(prefix):
    """The first CCP tables (6,192-step DDPM): settings chosen on test photos, so optimistic."""
    out = []
    for task in ("coarse", "fine"):
        d, s = load(f"ccp_ddpm_{task}_std_allblocks_6192steps"), load(f"ccp_skimage_{task}")
        for n in (10, 20, 50):
            dr, sr = rows_by(d, n_labeled=n, task=task)[0], rows_by(s, n_labeled=n, task=task)[0]
            out.append((task, n, mean_std(dr["miou_per_seed"]), mean_std(dr["pixel_accuracy_per_seed"]),
                        mean_std(sr["miou_per_seed"]), mean_std(sr["pixel_accuracy_per_seed"]),
                        f"{machine(d)}; {date(d)}"))
    return table(("task", "n", "DDPM mIoU", "DDPM pixel acc.", "scikit-image mIoU", "scikit-image pixel acc.",
                  "machine; date (DDPM)"), out)


def backbones(prefix):
    """Weizmann n = 20 against the backbone's training: every scored snapshot of weizmann_backbones.json."""
    r = load("weizmann_backbones")
    out = []
    ordered = sorted(r["backbones"].items(),
                     key=lambda kv: (kv[0] != "bundled", str(kv[1].get("preset")), kv[1]["step"]))
    for key, b in ordered:
        hours = "not recorded" if b.get("cpu_hours") is None else f"{b['cpu_hours']:.2f}"
        cv = "—" if b.get("cv_miou") is None else f"{b['cv_miou']:.1f}"
        label = "previously bundled fp32 model" if key == "bundled" else f"preset {b.get('preset', '?')}"
        out.append((label, f"{b['step']:,}", hours, cv, mean_std(b["test_miou_per_seed"]),
                    b.get("load_average_1min", "not recorded")))
    return table(("backbone", "steps", "CPU hours", "CV mIoU (labeled_pool, 1 seed)", "test mIoU",
                  "load average"), out) + (
        f"\n\nMachine: {machine(r)}; {date(r)}; record {link('weizmann_backbones', prefix)}.")


def levers(prefix):
    """Guided filter and flip averaging: chosen by CV, then scored on the test split once."""
    r = load("weizmann_levers_n20")
    cv = r["cv"]["mean_miou"]
    choice = r["cv"]["choice"]
    per_seed = r["test"]["per_seed"]
    names = {"baseline": "members' majority vote", "soft": "argmax of the mean probability",
             "flip": "flip averaging (`flip_tta=True`)",
             "guided": f"guided filter r={choice['guided']['radius']}, eps={choice['guided']['eps']} (now the default)",
             "flip+guided": "flip averaging + guided filter"}
    out = []
    for key, label in names.items():
        cv_key = key if key in cv else f"{key} r={choice[key]['radius']} eps={choice[key]['eps']}"
        out.append((label, f"{cv[cv_key]:.1f}", mean_std([s["scores"][key] for s in per_seed])))
    return table(("lever", "CV mIoU (labeled_pool, 1 seed)", "test mIoU"), out) + (
        f"\n\nCV winner: {choice['winner']}. Backbone: {backbone(r)} (the first bundled DDPM); "
        f"{machine(r)}; {date(r)}; record {link('weizmann_levers_n20', prefix)}.")


def memory(prefix):
    """Peak memory of feature extraction (and of the paper's classifier settings)."""
    out = []
    for name, what in (("memory_full_width_n50", "extraction + 1 epoch on 1,000 px/image"),
                       ("memory", "extraction + 1 epoch on 1,000 px/image"),
                       ("memory_real_settings", "the paper's classifier: all pixels, up to 100 epochs, early stop")):
        r = load(name)
        for run, row in zip(r["runs"], r["table"]):
            out.append((row["model"], row["N"], row["D"], f"{row['MB/img']:.1f} MB", f"**{row['peak RSS GB']:.2f} GB**",
                        f"{row['dense ref GB']:.1f} GB", f"`batch_size={run['batch_size']}`; {what}",
                        f"{machine(r)}; {date(r)}", link(name, prefix)))
    r = load("memory_defaults")
    run = r["run"]
    out.append((f"ADM-256 w{run['base_channels']} ({run['model']['parameters_M']} M)", run["n_images"], "—",
                f"{run['feature_bytes'] / run['n_images'] / 1e6:.1f} MB", f"**{run['peak_rss'] / 1e9:.2f} GB**", "—",
                f"every parameter at its default (`batch_size={run['batch_size']!r}`: "
                f"{run['forward_batch_size']} image per pass); extraction only",
                f"{machine(r)}; {date(r)}", link("memory_defaults", prefix)))
    return table(("model", "images", "features per pixel", "feature bytes per image (fp16)", "peak RSS",
                  "dense fp32 reference", "what ran", "machine; date", "record"), out) + (
        "\n\nRandom-init weights (memory does not depend on their values); GB = 10^9 bytes.")


def presets(prefix):
    r = load("presets")
    out = [(f"`{row['preset']}`", f"{row['image_size']}²", f"{row['parameters_M']} M", row["batch_size"],
            f"{row['seconds_per_step']:.1f} ({row['steps']} steps)") for row in r["rows"]]
    return table(("preset", "resolution", "parameters", "batch", "s/step, 1 thread"), out) + (
        f"\n\nOne run each while other jobs loaded the machine, so upper bounds for a quiet CPU: "
        f"{machine(r)}; {date(r)}; record {link('presets', prefix)}.")


def synthetic(prefix):
    """Table 3 on the CPU: real masks against DDPM samples labelled by the ensemble."""
    r = load("synthetic")
    out = []
    for row in r["summary"]:
        speed = np.mean(row["images_per_second"])
        out.append((row["method"], mean_std(row["scores"]), row["n_train_images"], f"{speed:.2f}"))
    ratio = r["throughput_ratio_network_vs_ddpm"]["per_seed"]
    probe = r["sampling_probe"]
    return table(("training data", "Weizmann test mIoU", "training images", "test images/s (mean of seeds)"), out) + (
        f"\n\nThe network predicts {np.mean(ratio):.1f}× faster than the DDPM-feature pipeline it learnt from "
        f"({min(ratio):.1f}–{max(ratio):.1f}× per seed, feature extraction included, same run); sampling cost "
        f"{probe['seconds_per_sample']:.1f} s per sample (a {probe['samples']}-sample probe). "
        f"{machine(r)} (load {r['load_average_1min_start']} at the start); {date(r)}; backbone {backbone(r)}; "
        f"record {link('synthetic', prefix)}.")


def ddp(prefix):
    """DDP training on the CPU: processes x threads at the same global batch."""
    r = load("ddp_training")
    rows = [(row["config"], f"{row['processes']} × {row['threads_per_process']}", row["global_batch"],
             f"{row['seconds_per_step']:.2f}", f"{row['load_average_before']}–{row['load_average_after']}")
            for row in r["rows"]]
    summary = r["summary"]
    return table(("configuration", "processes × threads", "global batch", "s/step", "load average (before–after)"),
                 rows) + (
        f"\n\n2 processes against 1 with the same threads per process: "
        f"{summary['speedup_2proc_vs_1proc_same_threads_per_process']:.2f}×; DDP overhead "
        f"{summary['ddp_overhead_seconds_per_step']:.2f} s/step. One run on {machine(r)}, {date(r)}; "
        f"record {link('ddp_training', prefix)}.")


def sweep(prefix):
    """The block x step sweep (paper, Figs. 2-3): the best and worst cells, and what it cost."""
    r = load("block_step_sweep")
    cells = sorted(r["cells"], key=lambda c: -c["miou"])
    steps = r["settings"]["steps"]
    rows = [(f"block {c['block']}, t = {c['step']}", f"{100 * c['miou']:.1f}", f"{100 * c['miou_small']:.1f}",
             f"{100 * c['miou_large']:.1f}") for c in cells[:3] + cells[-3:]]
    return table(("cell (3 best, 3 worst)", "test mIoU", "small classes", "large classes"), rows) + (
        f"\n\n{len(cells)} cells (steps {tuple(steps)}), one seed, 10 bundled train / 10 test horses: "
        f"{r['seconds']['total']:,.0f} s in all, {r['seconds']['feature_extraction']:.0f} s of it feature extraction; "
        f"backbone: the bundled DDPM of {date(r)} (the first one, 2,000 fp32 steps; hash {backbone(r)}); "
        f"{machine(r)}; record {link('block_step_sweep', prefix)}.")


def parts(prefix):
    """k-means parts (paper, Fig. 4), checked against the masks the clustering never saw."""
    r = load("part_discovery")
    rows = [(c["cluster"], f"{100 * c['share_of_pixels']:.0f} %", f"{100 * c['share_that_is_horse']:.0f} %")
            for c in sorted(r["clusters"], key=lambda c: -c["share_that_is_horse"])]
    s = r["settings"]
    return table(("cluster", "share of all pixels", "share that is horse"), rows) + (
        f"\n\nOne k-means (k = {s['n_clusters']}, steps {tuple(s['steps'])}, `random_state={s['random_state']}`) "
        f"on the {len(r['data']['images'])} bundled test horses; backbone: the bundled DDPM of {date(r)} (the first "
        f"one, 2,000 fp32 steps; hash {backbone(r)}); {machine(r)}; record {link('part_discovery', prefix)}.")


def demo(prefix):
    r = load("demo")
    s = r["seconds"]
    return (f"test mIoU **{r['test_miou']:.1f}** (one run, `random_state={r['settings']['random_state']}`; "
            f"predicting all background: {r['all_background_miou']:.1f}), {s['total']:.0f} s in all "
            f"(fit {s['fit']:.1f} s, predict {s['predict']:.1f} s) on {machine(r)}, {date(r)}; "
            f"backbone {backbone(r)}; record {link('demo', prefix)}.")


def ensemble(prefix):
    """Training speed of the 10-member ensemble: one by one, batched, batched with a large batch."""
    r = load("ensemble")
    labels = {"one-by-one": "members one by one (reference)", "batched": "batched (one module)",
              "batched-large": "batched, large batch"}
    rows = [(labels.get(row["mode"], row["mode"]), row["batch_size"], f"{row['lr']:g}",
             f"{row['pixel_updates_per_s']:,.0f}", f"{row['speedup_vs_one_by_one']:.2f}×") for row in r["rows"]]
    return table(("mode", "batch", "lr", "pixel-updates/s", "vs one by one"), rows) + (
        f"\n\nd = {r['n_features']}, {r['n_classes']} classes, {r['n_members']} members, device {r['device']}, "
        f"one run; GPU: {r.get('gpu', 'not recorded')}. {machine(r)}; {date(r)}; record {link('ensemble', prefix)}.")


def dask(prefix):
    """Dask prediction of a folder against the CLI in one process (distributed_predict.json)."""
    r = load("distributed_predict")
    s = r["settings"]
    rows = []
    for label, run in _dask_runs(r):
        per_worker = run["repeats"][0].get("torch_threads_per_worker")  # absent for the CLI: the machine's threads
        threads = str(r["machine"].get("torch_threads", "?")) if per_worker is None else (
            f"{per_worker[0]} each" if len(per_worker) > 1 else str(per_worker[0]))
        rss = [rep.get("peak_rss_mib") or max(rep["peak_rss_mib_per_worker"]) for rep in run["repeats"]]
        rows.append((label, threads, ", ".join(f"{rep['seconds']:.1f}" for rep in run["repeats"]),
                     f"{run['images_per_second']:.2f}", f"{run.get('ratio_to_cli', 1.0):.2f}", f"{max(rss):.0f} MiB"))
    loads = [rep["load_average_1min_before"] for _, run in _dask_runs(r) for rep in run["repeats"]]
    starts = [rep["cluster_start_seconds"] for _, run in _dask_runs(r)[1:] for rep in run["repeats"]]
    return table(("configuration", "torch threads", f"wall time of the {s['repeats']} runs (s)",
                  f"images/s ({s['n_images']} / mean)", "vs the CLI", "peak RSS per process"), rows) + (
        f"\n\n{s['n_images']} images, tasks of {s['images_per_task']}, a segmenter fitted on {s['n_train']} images "
        f"with {s['n_estimators']} MLPs; each configuration {s['repeats']} times, the second time in reverse order. "
        f"1-minute load average before each run {min(loads):.2f}–{max(loads):.2f} "
        f"({r['load_average_before'][0]} at the start, {r['load_average_after'][0]} at the end); "
        f"starting the cluster took {min(starts):.1f}–{max(starts):.1f} s (not in the times). "
        f"{machine(r)}; {date(r)}; backbone {backbone(r)}; record {link('distributed_predict', prefix)}.")


def ddp_speed(prefix):
    """DDP training on the CPU, steps per second per configuration, and where the overhead goes."""
    r = load("ddp_training")
    labels = {"2proc": "{processes} processes ({backend}) × {threads_per_process} thread, "
                       "{batch_per_process} samples each",
              "1proc": "{processes} process × {threads_per_process} thread, {batch_per_process} samples",
              "1proc_same_cores": "{processes} process × {threads_per_process} threads, {batch_per_process} samples",
              "1proc_half_batch": "{processes} process × {threads_per_process} thread, {batch_per_process} samples "
                                  "(one rank's work, no communication)"}
    order = ("2proc", "1proc", "1proc_same_cores", "1proc_half_batch")
    by = {row["config"]: row for row in r["rows"]}
    rows = [(labels[c].format(backend=r["backend"], **by[c]), f"{by[c]['seconds_per_step']:.2f}",
             f"{by[c]['steps_per_second']:.2f}", f"{by[c]['load_average_before']}–{by[c]['load_average_after']}")
            for c in order if c in by]
    st = r["settings"]
    loads = [x for row in r["rows"] for x in (row["load_average_before"], row["load_average_after"])]
    return table(("configuration", "s/step", "steps/s", "load average (before–after)"), rows) + (
        f"\n\nPreset {st['preset']}, global batch {st['global_batch']}, "
        f"one run of {st['steps']} steps per configuration, "
        f"the last {st['steps'] - st['warmup_steps']} timed; load average {min(loads)}–{max(loads)}. "
        f"{machine(r)}; {date(r)}; record {link('ddp_training', prefix)}.")


LARGE_BATCH_RULES = {
    "batch 64 (reference)": "batch 64 (the reference)",
    "sqrt": "batch 2048, the current rule: lr × √32, patience in pixels, 4 epochs",
    "linear+warmup2": "linear lr scaling, 2-epoch linear warm-up (Goyal et al., 2017)",
    "sqrt+ghost64": "current rule + ghost batch norm over 64 samples (Hoffer et al., 2017), 4 epochs",
    "linear+warmup2+ghost64": "linear scaling + warm-up + ghost batch norm",
    "sqrt+ghost64+min8": "current rule + ghost batch norm, at least 8 epochs",
    "sqrt+ghost64+min16": "current rule + ghost batch norm, at least 16 epochs",
    "sqrt+ghost64+min23": "current rule + ghost batch norm, at least 4·√32 = 23 epochs",
}


def large_batch_rule(prefix):
    """Issue 17's large-batch rules: GroupKFold CV means on the 20 labelled horses, then the test split once."""
    main, two, wide = load("large_batch_rule_n20"), load("large_batch_rule_cv_2seeds_n20"), load(
        "large_batch_rule_cv_10000px_n20")
    rows = []
    for key, label in LARGE_BATCH_RULES.items():
        cells = [r["cv"]["mean_miou"].get(key) for r in (main, two, wide)]
        rows.append((label, *("—" if c is None else f"{c:.1f}" for c in cells)))
    test = main["test"]
    fits = {k: [seed[k]["fit_seconds"] for seed in test["per_seed"]] for k in ("reference", "chosen")}
    return table(("rule (batch 2048 unless said)", "CV mIoU, 1 seed (the choice)", "CV, 2 seeds (afterwards)",
                  "CV, 10,000 px/image, 1 seed"), rows) + (
        f"\n\nChosen: {LARGE_BATCH_RULES[main['cv']['choice']['rule']]} ({main['cv']['choice']['how']}). "
        f"Test split (100 horses), scored once: **{mean_std([s['chosen']['miou'] for s in test['per_seed']])}** "
        f"against **{mean_std([s['reference']['miou'] for s in test['per_seed']])}** at batch 64; fits of "
        f"{min(fits['chosen']):.0f}–{max(fits['chosen']):.0f} s against {min(fits['reference']):.0f}–"
        f"{max(fits['reference']):.0f} s. Load average at the start {main['load_average_1min_start']:.1f} "
        f"(2 seeds: {two['load_average_1min_start']:.1f}, 10,000 px: {wide['load_average_1min_start']:.1f}); "
        f"{machine(main)}; {date(main)}; backbone {backbone(main)}; records {link('large_batch_rule_n20', prefix)}, "
        f"{link('large_batch_rule_cv_2seeds_n20', prefix)}, {link('large_batch_rule_cv_10000px_n20', prefix)}.")


def ccp_protocol_cv(prefix):
    """Stage 1 of the CCP protocol's CV (ccp_cv_protocol.json): blocks x steps, standardized or raw."""
    cells = _cv_cells("ccp_cv_protocol", "1")
    best = max(c["cv_miou"] for c in cells)
    rows = {}
    for c in cells:
        key = ("all 12" if len(c["blocks"]) == 12 else ", ".join(map(str, c["blocks"])), ", ".join(map(str, c["steps"])))
        value = f"{c['cv_miou']:.1f}" + (" (stage-1 winner)" if c["cv_miou"] == best else "")
        rows.setdefault(key, {})["standardized" if c["standardize"] else "raw"] = value
    return table(("blocks", "steps", "standardized", "raw"),
                 [(*key, v.get("standardized", "—"), v.get("raw", "—")) for key, v in rows.items()]) + (
        f"\n\nRecord {link('ccp_cv_protocol', prefix)}; {machine(load('ccp_cv_protocol'))}; "
        f"{date(load('ccp_cv_protocol'))}.")


def self_training(prefix, name="self_training_weizmann"):
    """Self-training against the plain fit by GroupKFold CV (self_training_weizmann.json, or ``name``)."""
    r = load(name)
    rows = []
    for c in r["cv"]:
        params = ", ".join(f"{k}={v}" for k, v in c["params"].items())
        label = f"`{params}`" + (" (the default segmenter)" if c["params"].get("n_rounds") == 0 else "")
        pseudo = ", ".join(f"{n:,.0f}" for n in c["n_pseudo_pixels_mean"]) or "-"
        rows.append((label, f"{c['cv_miou']:.1f}", f"{c['cv_miou_std_over_folds']:.1f}", pseudo,
                     f"{c['fit_cpu_seconds_mean']:.0f}"))
    return table(("candidate", f"CV mIoU ({r['folds']} folds)", "fold std", "pseudo-labelled pixels",
                  "fit, CPU s per fold"), rows) + (
        f"\n\n{machine(r)}; {date(r)}; backbone {backbone(r)}; record {link(name, prefix)}.")


def _latent_blocks(record):
    """Consecutive decoder blocks of one up-block, kind and shape, as one row (blocks 0, 1: two resnets)."""
    groups = []
    for b in record["decoder_blocks"]:
        kind = b["module"].rsplit(".", 1)[0]
        if groups and groups[-1][0] == (kind, b["channels"], tuple(b["resolution"])):
            groups[-1][1].append(b)
        else:
            groups.append(((kind, b["channels"], tuple(b["resolution"])), [b]))
    return groups


LATENT_BLOCK_NOTES = {5: " (DIFT's `up_ft_index=1`)"}


def latent_blocks(prefix):
    """SD-1.5's decoder blocks as the package numbers them (latent_memory.json, traced on the real config)."""
    r = load("latent_memory")
    rows = []
    for (_, channels, resolution), blocks in _latent_blocks(r):
        first, *rest = (b["module"] for b in blocks)
        module = ", ".join([f"`{first}`"] + [f"`.{m.rsplit('.', 1)[1]}`" for m in rest])
        note = "".join(LATENT_BLOCK_NOTES.get(b["block"], "") for b in blocks)
        size = "×".join(map(str, resolution)) if resolution[0] != resolution[1] else f"{resolution[0]}²"
        rows.append((", ".join(str(b["block"]) for b in blocks), module + note, channels, size))
    return table(("block", "module", "channels", "resolution (latent)"), rows) + (
        f"\n\nSD-1.5 at {r['image_size']}² ({r['latent_size']}² latents); record {link('latent_memory', prefix)}.")


def latent_memory(prefix):
    """SD-1.5's sizes: parameters, weights, activations, features; arithmetic on shapes (latent_memory.json)."""
    r = load("latent_memory")
    p, w, act = r["params"], r["weights_bytes"], r["unet_activations_per_image_half_bytes"]
    feats = r["features_per_image_float16"]
    est = r["estimate"]

    def mb(n):
        return f"{n / 1e6:.1f} MB"

    def gb(n):
        return f"{n / 1e9:.2f} GB"

    rows = [
        ("parameters", f"UNet {p['unet']:,}; VAE {p['vae']:,} (encoder {p['vae_encoder']:,}); "
                       f"CLIP text encoder {p['text_encoder']:,}"),
        ("UNet weights", f"{gb(w['unet_float32'])} float32; {gb(w['unet_half'])} bfloat16/float16"),
        ("VAE, text encoder weights (float32)", f"{gb(w['vae_float32'])}, {gb(w['text_encoder_float32'])}"),
        ("per image in the UNet (half precision)",
         f"skip tensors kept for the up path {mb(act['skip'])}; largest module output {mb(act['largest_output'])}; "
         f"the {r['latent_size']}² self-attention scores would be {act['attention_scores_64'] / 1e6:.0f} MB if "
         "materialized (PyTorch's fused SDPA kernels on CUDA do not)"),
        (f"VAE encoder's largest activation (float32, {r['image_size']}²)",
         f"{r['vae_encoder_largest_activation_float32'] / 1e6:.0f} MB per image"),
        ("compact features per image (float16)", "; ".join(f"`\"{k}\"` {mb(v['bytes'])}" for k, v in feats.items())),
        (f"GPU estimate, batch {est['batch_size']}, bf16 autocast",
         f"{gb(est['gpu_bytes_unet_half_plus_batch'])} = {est['formula'].split(';')[0]}"),
    ]
    return table(("", ""), rows) + (
        f"\n\nGB = 10^9 bytes, MB = 10^6; {r['method']}. {date(r)}; record {link('latent_memory', prefix)}.")


def latent_extract(prefix):
    """`transform` of one image with a full-size random-init SD-1.5 on the CPU (latent_extract.json)."""
    r = load("latent_extract")
    rows = []
    for row in r["rows"]:
        what = (f"block {row['blocks'][0]}" if len(row["blocks"]) == 1 else
                f"blocks {', '.join(map(str, row['blocks']))}")
        steps = (f"step {row['steps'][0]}" if len(row["steps"]) == 1 else f"{len(row['steps'])} steps")
        draws = f", {row['n_noise_samples']} draws" if row["n_noise_samples"] > 1 else ""
        rows.append((f"`\"{row['preset']}\"` ({what}; {steps}{draws})",
                     f"{row['unet_forwards_per_image']} (each stops after block {max(row['blocks'])})",
                     f"{row['seconds_per_image']:.0f}", f"{row['feature_bytes_per_image'] / 1e6:.1f} MB"))
    return table(("preset", "UNet forwards per image", "seconds per image", "compact features per image"), rows) + (
        f"\n\nDevice {r['device']}, {r['threads']} torch threads, float32, one run; {machine(r)}; {date(r)}; "
        f"record {link('latent_extract', prefix)}.")


def refit_latency(prefix):
    """The labelling loop's refit latency (interactive.md): every run kept in refit_latency.json."""
    r = load("refit_latency")
    rows = []
    for x in r["results"]:
        run = x.get("run", {})
        threads = x.get("torch_threads", run.get("torch_threads", "not recorded"))
        rows.append((x["backbone"], f"{x['n_features']:,}", x.get("mlp_batch_size", "not recorded"), threads,
                     f"**{x['stroke_to_prediction_s_median']:.2f} s** (max {x['stroke_to_prediction_s_max']:.2f})",
                     f"{x['stroke_to_prediction_cpu_s_median']:.2f} s", f"{x['fit_cpu_s_median']:.2f} s",
                     f"{x['predict_cpu_s_median']:.2f} s", x["unet_forward_passes_during_refits"],
                     f"{x.get('load_average_1min', run.get('load_average_1min_after'))}",
                     f"{run.get('date', r['date'])[:16].replace('T', ' ')}, {run.get('rounds', r['rounds'])} strokes"))
    return table(("backbone", "features per pixel", "MLP batch", "torch threads",
                  "stroke → updated prediction, wall (median)", "CPU (median)", "of which refit, CPU",
                  "of which prediction + uncertainty, CPU", "UNet passes during refits", "load average",
                  "run"), rows) + (f"\n\nRecord: {link('refit_latency', prefix)} ({r['machine']['cpu']}, "
                             f"{r['machine']['cpu_cores']} cores; each row is a run of its own, with its load average).")


def refit_profile(prefix):
    """Where a refit's and a prediction's CPU time goes (cProfile, CPU clock), per run of refit_latency.json."""
    r = load("refit_latency")
    parts = (("fit", "refit, all"), ("fit", "member forward passes (training)"), ("fit", "backward passes"),
             ("fit", "Adam updates"), ("fit", "batches served (pixel gathering)"),
             ("predict", "prediction and uncertainty, all"), ("predict", "projection upsampled to the image (bands)"),
             ("predict", "hidden layers of the members"), ("predict", "guided filter"),
             ("predict", "Jensen-Shannon uncertainty"))
    rows = []
    for x in r["results"]:
        prof = x.get("profile")
        if prof:
            rows.append((x["backbone"], f"{prof['labelled_pixels']:,}",
                         *(f"{prof[phase][name]['cpu_s']:.2f}" for phase, name in parts)))
    return table(("run", "labelled pixels", *(name for _, name in parts)), rows) + (
        f"\n\nCPU seconds of one more stroke after the timed rounds, under cProfile with a CPU-time clock "
        f"(record: {link('refit_latency', prefix)}).")

def refit_warm_start(prefix):
    """Warm-started refits vs from scratch (interactive.md): refit_warm_start.json."""
    r = load("refit_warm_start")
    labels = {"scratch": "(a) from scratch, the reference's stop rule",
              "warm": f"(b) from the previous members' weights, {r['warm_epochs']} epochs",
              "scratch_short": "(c) from scratch, at most 6 epochs (the session's default)"}
    refits = [x for rounds in r["per_seed"].values() for x in rounds]
    rows = []
    for key, label in labels.items():
        s, d = r["summary_over_rounds"][key], r["paired_difference_vs_scratch"].get(key)
        cpu = [x[key]["fit_cpu_s"] for x in refits]
        worst = min(x[key]["held_out_miou"] - x["scratch"]["held_out_miou"] for x in refits)
        rows.append((label, f"{s['held_out_miou'][0]:.1f} ± {s['held_out_miou'][1]:.1f}",
                     "—" if d is None else f"{d['held_out_miou'][0]:+.1f} ± {d['held_out_miou'][1]:.1f}",
                     "—" if d is None else f"{d['session_miou'][0]:+.1f} ± {d['session_miou'][1]:.1f}",
                     "—" if key == "scratch" else f"{worst:+.1f}", f"{min(cpu):.1f}–{max(cpu):.1f}"))
    return table(("refit", "held-out mIoU (mean ± std over seeds)", "held-out, minus (a) (mean ± std over refits)",
                  "session images, minus (a)", "worst held-out refit, minus (a)", "CPU s per refit"), rows) + (
        f"\n\n{len(refits)} refits ({len(r['seeds'])} seeds × {r['rounds']} rounds); record: "
        f"{link('refit_warm_start', prefix)} ({machine(r)}, {date(r)}).")

TABLES = {"headline": headline, "demo": demo, "weizmann": weizmann, "ccp_protocol": ccp_protocol,
          "ccp_test_selected": ccp_test_selected, "backbones": backbones, "levers": levers, "memory": memory,
          "presets": presets, "synthetic": synthetic, "sweep": sweep, "parts": parts, "ddp": ddp,
          "ensemble": ensemble, "dask": dask, "ddp_speed": ddp_speed,
          "large_batch_rule": large_batch_rule, "ccp_protocol_cv": ccp_protocol_cv, "self_training": self_training,
          "latent_blocks": latent_blocks, "latent_memory": latent_memory, "latent_extract": latent_extract,
          "refit_latency": refit_latency, "refit_profile": refit_profile,
          "refit_warm_start": refit_warm_start,
          "self_training_ccp": lambda prefix: self_training(prefix, "self_training_ccp"),
          "rare_classes": rare_classes, "ccp_backbones": ccp_backbones, "ccp_per_class": ccp_per_class,
          "rare_classes_ccp_backbone": lambda prefix: rare_classes(prefix, "rare_classes_ccp_backbone")}



# -- the pages ----------------------------------------------------------------------------------------

def render(text, prefix):
    """``text`` with every marked table rendered afresh (links to records relative to ``prefix``)."""
    def replace(match):
        name = match["name"]
        if name not in TABLES:
            raise KeyError(f"unknown report table {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name](prefix)}\n{match.group(4)}"

    def replace_inline(match):
        return f"{match.group(1)}{figure(match['key'])}{match.group(4)}"

    return INLINE.sub(replace_inline, MARKER.sub(replace, text))


def _scribbles_page(draw):
    import scribbles

    return scribbles.page_text(draw=draw)


# pages generated whole by their benchmark's own renderer (page_text), checked and rewritten here like the rest
WHOLE_PAGES = {ROOT / "docs" / "scribbles.md": _scribbles_page}


def prefix_for(page):
    return "" if page.parent == ROOT else "../"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page differs from a fresh rendering")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        if not page.is_file():
            continue
        old = page.read_text()
        new = WHOLE_PAGES[page](draw=not args.check) if page in WHOLE_PAGES else render(old, prefix_for(page))
        if new != old:
            stale.append(page)
            if args.check:
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                           str(page), "fresh rendering"))
            else:
                page.write_text(new)
                print(f"rewrote {page.relative_to(ROOT)}")
    if args.check and stale:
        print(f"\n{len(stale)} page(s) out of date: run python benchmarks/report.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
