"""Mean ± sample standard deviation (ddof=1) over seeds, recomputed from the per-seed values of records.

Records written before the benchmarks switched to the sample standard deviation hold a ``miou_std``
with ``ddof=0`` (smaller by a factor sqrt((k-1)/k), 0.82 for 3 seeds); every one of them also holds
the per-seed scores (``scores`` or ``miou_per_seed`` / ``pixel_accuracy_per_seed``). This script
reads every record in ``benchmarks/results/`` that has per-seed values and writes, for each row,
the mean, the sample standard deviation, the number of seeds, the per-seed values and the std the
record itself stored, to ``benchmarks/results/recomputed_sample_std.json``. The figures quoted in
README.md and docs/ with a ``±`` come from this file. It reads JSON only (seconds, no model)::

    python benchmarks/recompute_std.py
"""

import json
from pathlib import Path

import _common

NAME = "recomputed_sample_std"
SOURCES = ("miou", "pixel_accuracy")


def per_seed_values(row):
    """``{"miou": [...], "pixel_accuracy": [...]}``: the per-seed values a record row holds."""
    values = {}
    if "scores" in row:  # benchmarks/weizmann.py
        values["miou"] = row["scores"]
    for key in SOURCES:
        if f"{key}_per_seed" in row:  # benchmarks/ccp.py
            values[key] = row[f"{key}_per_seed"]
    return values


def recompute(results_dir=_common.RESULTS_DIR):
    """One entry per record row that holds per-seed values."""
    entries = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.stem == NAME:
            continue
        record = json.loads(path.read_text())
        rows = record.get("rows")
        if not isinstance(rows, list):
            continue
        stored_std_kind = record.get("std") or record.get("miou_std") or "population std (ddof=0)"
        for row in rows:
            values = per_seed_values(row)
            if not values:
                continue
            entry = {"record": path.name, "stored_std": stored_std_kind,
                     **{k: row[k] for k in ("method", "task", "n_labeled") if k in row}}
            for key, seeds in values.items():
                mean, std = _common.mean_sample_std(seeds)
                entry[key] = {"n_seeds": len(seeds), "mean": mean, "sample_std": std,
                              "stored_std": row.get(f"{key}_std"), "per_seed": seeds,
                              "text": _common.format_mean_std(seeds)}
            entries.append(entry)
    return entries


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=_common.RESULTS_DIR, help="folder of the records to read")
    args = p.parse_args(argv)
    entries = recompute(args.results)
    table = [{"record": e["record"], "method": e.get("method"), "task": e.get("task"), "n": e.get("n_labeled"),
              "seeds": e["miou"]["n_seeds"], "mIoU": e["miou"]["text"],
              "pixel acc": e.get("pixel_accuracy", {}).get("text")} for e in entries]
    _common.print_table(table, ["record", "method", "task", "n", "seeds", "mIoU", "pixel acc"],
                        title="mean ± sample std (ddof=1) over seeds")
    path = _common.write_json(NAME, {"std": _common.STD_NOTE, "entries": entries},
                              args.out or Path(args.results) / f"{NAME}.json")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
