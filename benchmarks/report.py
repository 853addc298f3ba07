"""Render every results table of README.md and docs/benchmarks.md from the JSON records.

Each table sits between two marker comments in its page::

    <!-- report:NAME -->
    ...generated...
    <!-- /report:NAME -->

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
        rows.append((f"Weizmann horses, n = {n}", f"**{mean_std(ddpm['scores'])}**", mean_std(ski["scores"]),
                     "package defaults", link(name, prefix)))
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
    ordered = sorted(r["backbones"].items(), key=lambda kv: (kv[0] != "bundled", str(kv[1].get("preset")), kv[1]["step"]))
    for key, b in ordered:
        hours = "not recorded" if b.get("cpu_hours") is None else f"{b['cpu_hours']:.2f}"
        cv = "—" if b.get("cv_miou") is None else f"{b['cv_miou']:.1f}"
        label = "previously bundled fp32 model" if key == "bundled" else f"preset {b.get('preset', '?')}"
        out.append((label, f"{b['step']:,}", hours, cv, mean_std(b["test_miou_per_seed"]),
                    b.get("load_average_1min", "not recorded")))
    return table(("backbone", "steps", "CPU hours", "CV mIoU (labeled_pool, 1 seed)", "test mIoU",
                  "load average"), out) + f"\n\nMachine: {machine(r)}; {date(r)}; record {link('weizmann_backbones', prefix)}."


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


TABLES = {"headline": headline, "demo": demo, "weizmann": weizmann, "ccp_protocol": ccp_protocol,
          "ccp_test_selected": ccp_test_selected, "backbones": backbones, "levers": levers, "memory": memory,
          "presets": presets, "synthetic": synthetic, "sweep": sweep, "parts": parts, "ddp": ddp}


# -- the pages ----------------------------------------------------------------------------------------

def render(text, prefix):
    """``text`` with every marked table rendered afresh (links to records relative to ``prefix``)."""
    def replace(match):
        name = match["name"]
        if name not in TABLES:
            raise KeyError(f"unknown report table {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name](prefix)}\n{match.group(4)}"

    return MARKER.sub(replace, text)


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
