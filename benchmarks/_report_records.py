"""Reading the JSON records for report.py: one place for how a record is loaded and how its numbers print.

The tables (report.py) and the inline figures (_report_figures.py) both read the records through these
functions, so a mean, a ``±`` or a machine line is formatted the same way everywhere.
"""

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


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


# -- record accessors shared by tables and figures ------------------------------------------------

def _training(record):
    info = record.get("test_model_training") or record.get("cv_model_training") or {}
    cpu = [s.get("cpu_seconds") for s in info.get("sessions", [])]
    cpu_hours = f"{sum(cpu) / 3600:.2f}" if cpu and all(c is not None for c in cpu) else "not recorded"
    return info.get("step", "?"), cpu_hours, len(info.get("sessions", []))


def _dask_runs(r):
    return (("`sklearn-ddpm predict` (one process)", r["runs"]["cli"]),
            ("`predict_folder`, 1 worker", r["runs"]["dask_1_worker"]),
            ("`predict_folder`, 2 workers", r["runs"]["dask_2_workers"]))


def _cv_cells(name, stage, **match):
    return [c for c in load(name)["cv_table"] if c["stage"].startswith(stage)
            and all((len(c[k]) if k == "blocks" else c.get(k)) == v for k, v in match.items())]


def protocol_settings(chosen):
    """The settings a ccp_cv_protocol record chose, in words (class balance since issue 29)."""
    text = (f"{len(chosen['blocks'])} blocks, steps {tuple(chosen['steps'])}, "
            f"{'standardized' if chosen['standardize'] else 'raw'}, {chosen['max_pixels_per_image']:,} px, "
            f"{chosen['n_noise_samples']} noise draw(s), refine={chosen.get('refine')}")
    if "class_weight" in chosen:  # the rare-class levers, searched since issue 29
        text += f", {chosen.get('max_pixels_per_class') or 'no'} px per class, class weight {chosen.get('class_weight')}"
    return text


#: display names of CCP's coarse classes (the others print as they are)
CCP_CLASS_NAMES = {"upper_clothes": "upper clothes", "lower_clothes": "lower clothes", "hat_glasses": "hat/glasses"}
