"""Render every results table of README.md and docs/benchmarks.md from the JSON records.

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
fresh rendering.

Examples
--------
    python benchmarks/report.py           # rewrite the marked tables in README.md and docs/benchmarks.md
    python benchmarks/report.py --check   # exit 1 (and print a diff) if a page is out of date
"""

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))  # any page may hold a marked table
MARKER = re.compile(r"(<!-- report:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /report:(?P=name) -->)", re.S)
# one figure in a sentence; its text may wrap onto the next line of the paragraph, never past a blank line
INLINE = re.compile(r"(<!-- fig:(?P<key>[a-z0-9_.+-]+) -->)(?P<body>(?:(?!\n\n).)*?)(<!-- /fig -->)", re.S)


# -- reading records ------------------------------------------------------------------------------------

def load(name):
    """The record ``benchmarks/results/NAME.json``."""
    return json.loads((RESULTS / f"{name}.json").read_text())


def link(name, prefix):
    return f"[`{name}.json`]({prefix}benchmarks/results/{name}.json)"


def mean_std(values, digits=1):
    """``"mean ± std (n seeds)"`` with the sample std (ddof=1); one value: ``"mean (1 seed)"``."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f} ({values.size} seeds)"


def machine(record):
    m = record.get("machine", {})
    cpu = str(m.get("cpu", "not recorded")).replace("Intel(R) Xeon(R) Processor", "Intel Xeon")
    load_1min = m.get("load_average_1min")
    return f"{cpu}, {m.get('cpu_cores', '?')} cores, load {load_1min if load_1min is not None else 'not recorded'}"


def backbone(record):
    """The backbone's content hash (first 12 hex digits of the SHA-256 of its safetensors) or "not recorded"."""
    digest = record.get("backbone_sha256")
    return f"`{digest[:12]}`" if digest else "not recorded"


def date(record):
    return str(record.get("date", "not recorded"))[:10]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rows_by(record, **match):
    return [r for r in record["rows"] if all(r.get(k) == v for k, v in match.items())]


# -- the tables ---------------------------------------------------------------------------------------

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
    ccp = load("ccp_cv_protocol")
    row = ccp["test"]["rows"][0]
    ski = rows_by(load("ccp_skimage_coarse"), n_labeled=20)[0]
    rows.append(("CCP clothing (11 classes), n = 20", f"**{mean_std(row['miou_per_seed'])}**",
                 mean_std(ski["miou_per_seed"]), "GroupKFold CV on the 20 labelled photos",
                 f"{link('ccp_cv_protocol', prefix)}, {link('ccp_skimage_coarse', prefix)}"))
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


def _training(record):
    info = record.get("test_model_training") or record.get("cv_model_training") or {}
    cpu = [s.get("cpu_seconds") for s in info.get("sessions", [])]
    cpu_hours = f"{sum(cpu) / 3600:.2f}" if cpu and all(c is not None for c in cpu) else "not recorded"
    return info.get("step", "?"), cpu_hours, len(info.get("sessions", []))


def ccp_protocol(prefix):
    """CCP coarse, n = 20, under issue 16's protocol: settings by CV, then the test split."""
    out = []
    for name in ("ccp_cv_protocol_320steps", "ccp_cv_protocol", "ccp_cv_protocol_5709steps"):
        r = load(name)
        step, cpu_hours, sessions = _training(r)
        best = max(r["cv_table"], key=lambda c: c["cv_miou"])
        row = r["test"]["rows"][0]
        chosen = r["chosen"]
        settings = (f"{len(chosen['blocks'])} blocks, steps {tuple(chosen['steps'])}, "
                    f"{'standardized' if chosen['standardize'] else 'raw'}, {chosen['max_pixels_per_image']:,} px, "
                    f"{chosen['n_noise_samples']} noise draw(s), refine={chosen.get('refine')}")
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


def _dask_runs(r):
    return (("`sklearn-ddpm predict` (one process)", r["runs"]["cli"]),
            ("`predict_folder`, 1 worker", r["runs"]["dask_1_worker"]),
            ("`predict_folder`, 2 workers", r["runs"]["dask_2_workers"]))


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


TABLES = {"headline": headline, "demo": demo, "weizmann": weizmann, "ccp_protocol": ccp_protocol,
          "ccp_test_selected": ccp_test_selected, "backbones": backbones, "levers": levers, "memory": memory,
          "presets": presets, "synthetic": synthetic, "sweep": sweep, "parts": parts, "ddp": ddp,
          "ensemble": ensemble, "dask": dask, "ddp_speed": ddp_speed,
          "large_batch_rule": large_batch_rule, "ccp_protocol_cv": ccp_protocol_cv}


# -- figures quoted in running prose --------------------------------------------------------------------
# Each is one value, computed from its record as the tables are; the prose around it names the record.

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


CCP_CLASS_NAMES = {"upper_clothes": "upper clothes", "lower_clothes": "lower clothes", "hat_glasses": "hat/glasses"}


def _ccp_row(name, task, n):
    return rows_by(load(name), task=task, n_labeled=int(n))[0]


CCP_9500 = "ccp_ddpm_coarse_n20_std_allblocks_9500steps"


def _ccp_mean(name, task, n, field="miou_per_seed"):
    return float(np.mean(_ccp_row(name, task, n)[field]))


def _protocol_test(name):
    return load(name)["test"]["rows"][0]


def _cv_cells(name, stage, **match):
    return [c for c in load(name)["cv_table"] if c["stage"].startswith(stage)
            and all((len(c[k]) if k == "blocks" else c.get(k)) == v for k, v in match.items())]


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
        new = render(old, prefix_for(page))
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
