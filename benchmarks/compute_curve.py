"""Segmentation mIoU against CPU core-hours of backbone training: what an hour of a CPU buys.

One point per backbone, n = 20 labelled images:

- CCP coarse: snapshots of one ``train-ddpm`` run (``--ccp-snapshots``: model folders, each with
  the ``train_info.json`` of the run at that step) and a random-init preset-64 UNet (0 h), each
  scored by ``benchmarks/ccp.py`` on the ``test`` photos with fixed settings -- ``--settings
  protocol``: those ``ccp_cv_protocol.py`` chose by cross-validation on ``labeled_pool`` (read from
  its record, ``--protocol``); ``--settings readme``: those of the README's earlier CCP table
  (``README_SETTINGS``). No setting is chosen here. The protocol record's own test row (the final
  backbone, its seeds) is added as a point as it is.
- Recorded points (``--recorded-point``): the n = 20 ``ddpm`` row of an existing
  ``weizmann.py`` or ``ccp.py`` record, with the core-hours of the backbone's training record
  (``train_info.json`` or the bundled ``MODEL_CARD.md``) or, where the training log was not kept, a
  number with its source (``HOURS=why``); such points are marked ``core_hours_backed: false`` and
  drawn hollow.

Two compute figures per point:

- ``core_hours``: the training loop's wall seconds x torch threads (``train_info.json``:
  ``train_seconds`` and the sessions' ``threads``; for the bundled backbone, the ``training time``
  line its export wrote into ``MODEL_CARD.md``). On a shared machine this overstates the work by the
  contention of the day (up to ~6x here), differently for every run.
- ``cpu_hours`` (the plot's x when known): the CPU seconds (user + sys) the training processes used,
  measured per segment by the driver that ran the training (``--segments``); for a recorded backbone
  of the same preset and batch, its steps x the CPU seconds per step measured in that run
  (``cpu_hours_source`` says which).

Writes ``benchmarks/results/compute_curve.json`` and ``docs/images/compute_curve.png``.

Examples
--------
    python benchmarks/compute_curve.py --ccp-snapshots runs/snapshots/step-* --ccp-random --seeds 0
    python benchmarks/compute_curve.py --append            # re-plot, adding only new snapshots
    python benchmarks/compute_curve.py --quick
"""

import json
import re
import sys
import tempfile
from pathlib import Path

import _common
import ccp

NAME = "compute_curve"
BUNDLED = _common.REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"
NOT_KEPT = "the training log was not kept; README/tutorial text"
DEFAULT_RECORDED = [
    # The README's earlier CCP figures, same settings as README_SETTINGS, all 130 photos, 3 seeds.
    ["ccp_coarse", "earlier run, 6,192 steps", "ccp_ddpm_coarse_std_allblocks_6192steps.json",
     f"3.34=12,032 s of 1-thread training ({NOT_KEPT})", "6192"],
    ["ccp_coarse", "earlier run resumed to 9,500 steps", "ccp_ddpm_coarse_n20_std_allblocks_9500steps.json",
     f"4.74=12,032 s with 1 thread + 42 min with 2 threads ({NOT_KEPT})", "9500"],
]
# The model card's "training time" line, as export_backbone.py has written it over time: hours, threads.
CARD_HOURS = r"([\d.]+) h (?:of compute|wall|of training loop \(wall\))[^|]*?(\d+) torch thread"
DEFAULT_PLOT = _common.REPO_ROOT / "docs" / "images" / "compute_curve.png"
# The settings of the README's earlier CCP table (26.8 / 27.9), fixed here so that every snapshot
# of a training run is scored alike while the CV of ccp_cv_protocol.py runs.
README_SETTINGS = {"blocks": list(range(12)), "steps": [50, 150, 250], "standardize": True, "n_estimators": 3,
                   "max_pixels_per_image": 1000, "n_noise_samples": 1}


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--ccp-snapshots", nargs="*", default=[], help="model folders of one train-ddpm run")
    p.add_argument("--ccp-random", action="store_true", help="also score a random-init preset-64 UNet (0 h)")
    p.add_argument("--protocol", type=Path, default=_common.RESULTS_DIR / "ccp_cv_protocol.json",
                   help="ccp_cv_protocol.py record: the CV-chosen settings and the final point")
    p.add_argument("--other-protocols", type=Path, nargs="*",
                   default=sorted(_common.RESULTS_DIR.glob("ccp_cv_protocol_*steps.json")),
                   help="other ccp_cv_protocol.py records of the same training run, their test rows as points "
                        "(default: ccp_cv_protocol_*steps.json)")
    p.add_argument("--settings", choices=["protocol", "readme"], default="protocol",
                   help="classifier and feature settings of the snapshots' scoring (default: protocol)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="classifier seeds per snapshot (default: 0)")
    p.add_argument("--n-test", type=int, default=None, help="first N test photos (default: all 130)")
    p.add_argument("--segments", type=Path, default=None,
                   help="JSON list of training segments with measured CPU seconds (step, segment_cpu_s)")
    p.add_argument("--recorded-point", nargs=5, action="append",
                   metavar=("DATASET", "LABEL", "RECORD", "TRAINING", "STEPS"),
                   help="dataset (weizmann or ccp_coarse), label, a record in benchmarks/results, the backbone's "
                        "train_info.json, MODEL_CARD.md or HOURS=source, and its optimizer steps (preset 64, "
                        "batch 8) (default: DEFAULT_RECORDED)")
    p.add_argument("--weizmann-record", type=Path, default=_common.RESULTS_DIR / "weizmann_backbones.json",
                   help="weizmann_backbones.py record: its backbones are the Weizmann points (one scoring "
                        "setting for all)")
    p.add_argument("--append", action="store_true",
                   help="keep the points scored into the existing record, score only new snapshots")
    p.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help=f"figure path (default: {DEFAULT_PLOT.name})")
    return p


def record_core_hours(info):
    """Wall seconds x torch threads of a ``train_info.json`` record, in hours; None when its sessions
    ran with different thread counts (the seconds of each session are not recorded, so they cannot
    be split)."""
    threads = {s["threads"] for s in info["sessions"]}
    return info["train_seconds"] * threads.pop() / 3600 if len(threads) == 1 else None


def core_hours(training):
    """``(core_hours, source)`` from a ``train_info.json`` (or a folder holding one) or a ``MODEL_CARD.md``."""
    path = Path(training)
    if path.is_dir():
        path = path / "train_info.json"
    if path.name == "MODEL_CARD.md":
        match = re.search(r"\| training time \| " + CARD_HOURS, path.read_text())
        if not match:
            raise ValueError(f"{path} has no 'training time | X h ... N torch thread' line.")
        return float(match[1]) * int(match[2]), _relative(path)
    info = json.loads(path.read_text())
    hours = record_core_hours(info)
    if hours is None:
        threads = sorted({s["threads"] for s in info["sessions"]})
        raise ValueError(f"{path}: sessions ran with different thread counts {threads}.")
    return hours, _relative(path)


def _relative(path):
    path = Path(path).resolve()
    return str(path.relative_to(_common.REPO_ROOT)) if path.is_relative_to(_common.REPO_ROOT) else str(path)


def cpu_seconds_per_step(segments):
    """CPU seconds per optimizer step over all segments (None without a segments record)."""
    if not segments:
        return None
    return sum(s["segment_cpu_s"] for s in segments) / segments[-1]["step"]


def measured_cpu_hours(segments, step):
    """CPU hours of the training segments up to ``step`` (None without a segments record)."""
    if segments is None:
        return None
    done = [s for s in segments if s["step"] <= step]
    if not done or done[-1]["step"] != step:
        return None
    return sum(s["segment_cpu_s"] for s in done) / 3600


def record_cpu_hours(training, segments):
    """CPU hours of a ``train_info.json`` record: each session's own ``cpu_seconds``, or, for a session
    that predates that field, the CPU seconds the segment driver measured over its steps (None if
    neither covers a session)."""
    total = 0.0
    for session in (training or {}).get("sessions", []):
        if session.get("cpu_seconds") is not None:
            total += session["cpu_seconds"]
            continue
        covered = [s for s in segments or [] if session["start_step"] < s["step"] <= session["end_step"]]
        if not covered or covered[-1]["step"] != session["end_step"]:
            return None
        total += sum(s["segment_cpu_s"] for s in covered)
    return total / 3600 if training else None


def protocol_point(record, path, segments):
    """The test row of a ``ccp_cv_protocol.py`` record (settings chosen by its CV) as a point."""
    row = record["test"]["rows"][0]
    training = record["test_model_training"] or {}
    return {"dataset": "ccp_coarse", "label": f"protocol, step {training.get('step')}", "settings": "protocol",
            "series": "CCP run of the training record, CV-chosen settings",
            "n_labeled": row["n_labeled"],
            "n_test_images": record["test"]["n_test_images"], "miou_per_seed": row["miou_per_seed"],
            "miou_mean": row["miou_mean"], "miou_std": row["miou_std"], "source": _relative(path),
            "step": training.get("step"),
            "core_hours": record_core_hours(training) if training else None,
            "core_hours_source": f"{_relative(path)} (test_model_training)",
            "core_hours_backed": True, "cpu_hours_source": "measured",
            "cpu_hours": record_cpu_hours(training, segments)}


def ccp_point(args, chosen, model, label, tmp):
    """Score ``model`` with the chosen settings through ``ccp.py``; returns the point."""
    from ccp_cv_protocol import test_argv

    scoring = argparse_namespace(args)
    out = Path(tmp) / f"{label.replace(' ', '_')}.json"
    argv = test_argv(scoring, chosen, model, out)
    if args.n_test is not None:
        argv += ["--n-test", str(args.n_test)]
    record = json.loads(Path(ccp.main(argv)).read_text())
    row = record["rows"][0]
    return {"dataset": "ccp_coarse", "label": label, "n_labeled": row["n_labeled"],
            "n_test_images": record["n_test_images"], "miou_per_seed": row["miou_per_seed"],
            "miou_mean": row["miou_mean"], "miou_std": row["miou_std"], "source": NAME}


def argparse_namespace(args):
    """The fields ``ccp_cv_protocol.test_argv`` reads."""
    from types import SimpleNamespace

    return SimpleNamespace(n_labeled=20, seeds=args.seeds, threads=args.threads, device=args.device,
                           quick=args.quick, max_epochs=100)


def recorded_point(dataset, label, record, training, steps):
    """The n = 20 ddpm row of a weizmann.py or ccp.py record, with its backbone's core-hours."""
    data = json.loads((_common.RESULTS_DIR / record).read_text())
    row = next(r for r in data["rows"] if r["method"] == "ddpm" and r["n_labeled"] == 20
               and r.get("task", "coarse") == "coarse")
    scores = row.get("scores") or row["miou_per_seed"]
    hours, backed = training.split("=", 1) if "=" in training else (None, None)
    if hours is None:
        hours, source = core_hours(training)
    else:
        hours, source = float(hours), backed
    mean, std = _common.mean_sample_std(scores)
    return {"dataset": dataset, "label": label, "n_labeled": 20, "miou_per_seed": scores, "miou_mean": mean,
            "miou_std": std, "source": f"benchmarks/results/{record}", "settings": "record",
            "series": "earlier run, recorded (its record's settings)",
            "core_hours": hours, "core_hours_source": source, "core_hours_backed": backed is None,
            "step": int(steps), "cpu_hours": None}


def weizmann_points(path):
    """The rows of a ``weizmann_backbones.py`` record as points; one series per training run."""
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    points = []
    for spec, row in record["backbones"].items():
        if row["source"] == "bundled":
            card = row["model_card"]
            match = re.match(CARD_HOURS, card["training time"])
            precision = "bfloat16" if "bfloat16" in card["training time"] else "fp32"
            core, series = float(match[1]) * int(match[2]), f"bundled model exported {card['exported'][:10]} ({precision})"
            label = f"{series}, {row['step']} steps"
        else:
            sessions_threads = 1  # weizmann_backbones runs are 1-thread train-ddpm runs; the record says so
            core = row["train_seconds"] * sessions_threads / 3600
            series = f"{Path(spec).parent.parent.name} ({'/'.join(row.get('autocast', []))})"
            label = f"{series}, step {row['step']}"
        points.append({"dataset": "weizmann", "series": series, "label": label, "n_labeled": 20,
                       "miou_per_seed": row["test_miou_per_seed"], "miou_mean": row["test_miou"],
                       "miou_std": row["test_miou_std"], "source": _relative(path), "settings": record["classifier"],
                       "core_hours": core, "core_hours_source": _relative(path), "core_hours_backed": True,
                       "step": row["step"], "cpu_hours": row["cpu_hours"],
                       "cpu_hours_source": "measured" if row["cpu_hours"] is not None else None})
    return points


def plot(points, path, x_axis):
    """One panel per dataset (their mIoU ranges differ); hollow markers: x estimated, not measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def estimated(p):
        if x_axis == "cpu_hours":
            return str(p.get("cpu_hours_source", "")).startswith("estimated")
        return not p.get("core_hours_backed", True)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharex=True)
    for ax, (dataset, style, name) in zip(axes, [("ccp_coarse", "o-", "CCP coarse (11 classes)"),
                                                 ("weizmann", "s-", "Weizmann horse")]):
        mine = [p for p in points if p["dataset"] == dataset]
        for series in dict.fromkeys(p.get("series", "") for p in mine):  # one line per training run
            pts = sorted((p for p in mine if p.get("series", "") == series), key=lambda p: p[x_axis])
            line = ax.errorbar([p[x_axis] for p in pts], [p["miou_mean"] for p in pts],
                               yerr=[p["miou_std"] or 0 for p in pts], fmt=style, capsize=3, label=series or None)
            hollow = [p for p in pts if estimated(p)]
            ax.plot([p[x_axis] for p in hollow], [p["miou_mean"] for p in hollow], style[0], ms=11, mfc="white",
                    color=line[0].get_color(), zorder=3, label="x estimated from steps" if hollow else None)
            last = None
            for p in pts:  # label a point unless it would overlap the previous label
                if last is not None and p[x_axis] - last < 0.35:
                    continue
                last = p[x_axis]
                ax.annotate(f"{p['step']} steps" if p.get("step") else "random", (p[x_axis], p["miou_mean"]),
                            textcoords="offset points", xytext=(4, -12), fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7)
        ax.set_title(f"{name}, n = 20")
        ax.set_xlabel("CPU hours of DDPM training (user + sys)" if x_axis == "cpu_hours" else
                      "core-hours of DDPM training (wall x threads)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test mIoU %")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = build_parser().parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    args.device = device
    recorded = args.recorded_point or DEFAULT_RECORDED
    out = Path(args.out) if args.out else _common.RESULTS_DIR / f"{NAME}.json"
    # Only the points scored here are kept; those read from other records are read again.
    points = json.loads(out.read_text())["points"] if args.append and out.is_file() else []
    points = [p for p in points if p["source"] == NAME]
    done = {p["label"] for p in points}
    protocol = json.loads(args.protocol.read_text()) if args.protocol.is_file() else {}
    chosen = protocol["chosen"] if args.settings == "protocol" else README_SETTINGS
    segments = json.loads(args.segments.read_text()) if args.segments else None
    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        todo = [("random-init UNet", "random", None)] if args.ccp_random else []
        for folder in args.ccp_snapshots:
            info = json.loads((Path(folder) / "train_info.json").read_text())
            todo.append((f"step {info['step']}", folder, info["step"]))
        for label, model, step in todo:
            if label in done:
                continue
            point = ccp_point(args, chosen, model, label, tmp)
            if step is None:
                point.update(core_hours=0.0, core_hours_source=None, cpu_hours=0.0, cpu_hours_source="no training",
                             step=0, core_hours_backed=True)
            else:
                hours, source = core_hours(model)
                point.update(core_hours=hours, core_hours_source=f"{model}/train_info.json", step=step,
                             core_hours_backed=True, cpu_hours=measured_cpu_hours(segments, step),
                             cpu_hours_source="measured")
            point["settings"] = args.settings
            points.append(point)
            print(f"  ccp {label}: {point['miou_mean']:.1f} mIoU at {point['core_hours']:.2f} core-h", flush=True)
    # The default --other-protocols glob may name the --protocol record too: one point per record.
    for path in dict.fromkeys(p.resolve() for p in [args.protocol, *args.other_protocols]):
        record = json.loads(path.read_text()) if path.is_file() else {}
        if record.get("test"):
            points.append(protocol_point(record, path, segments))
    points += [recorded_point(*point) for point in recorded] + weizmann_points(args.weizmann_record)
    points = [p for p in points if p["core_hours"] is not None]
    rate = cpu_seconds_per_step(segments)
    for p in points:
        if p.get("step") == 0:
            p["cpu_hours"], p["cpu_hours_source"] = 0.0, "no training"
        elif p.get("cpu_hours") is None and rate is not None and p.get("step") is not None:
            p["cpu_hours"] = p["step"] * rate / 3600
            p["cpu_hours_source"] = (f"estimated: {p['step']} steps x {rate:.2f} CPU s per step measured in the "
                                     "segmented run (same preset 64, batch 8)")
    x_axis = "cpu_hours" if points and all(p.get("cpu_hours") is not None for p in points) else "core_hours"
    plot(points, args.plot, x_axis)
    payload = {"x_axis": x_axis, "cpu_seconds_per_step": rate, "settings": args.settings, "chosen_settings": chosen, "protocol_record": _relative(args.protocol),
               "seeds": args.seeds,
               "points": points, "plot": _relative(args.plot), "std": _common.STD_NOTE}
    path = _common.write_json(NAME, payload, args.out, args.device)
    _common.print_table(sorted(points, key=lambda p: (p["dataset"], p["step"] or 0)),
                        ["dataset", "label", "step", "core_hours", "cpu_hours", "miou_mean", "miou_std"],
                        title="mIoU (n = 20) against core-hours of backbone training")
    print(f"wrote {path} and {args.plot}")
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
