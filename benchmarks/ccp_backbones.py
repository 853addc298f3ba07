"""CCP: which backbone, chosen by cross-validation on the labelled photos (issue 29, item 4).

The rule, fixed before any of its runs (2026-12-07): every backbone gets the same CV of
``ccp_cv_protocol.py --skip-test`` (the first 20 photos of ``labeled_pool``, ``GroupKFold(4)``, the
protocol's stages; no test photo is read). A backbone's score is the mean CV mIoU of the settings
the protocol chose for it, and the backbones are compared on the folds' paired differences of
those scores. The backbone with the higher score is chosen, unless the difference is within one
standard error of the paired differences (sample std over the folds / sqrt(folds)): then the one
with fewer UNet parameters (cheaper to extract features with) is chosen. The test photos are then
scored once, by ``ccp_cv_protocol.py --cv-record <its CV record> --model <it>``.

This script reads the CV records (it runs nothing) and writes ``benchmarks/results/ccp_backbones.json``
with each backbone's training facts (steps, CPU seconds, preset, parameters, weights' sha256), its
CV choice and fold scores, the paired comparison and the choice::

    python benchmarks/ccp_backbones.py --cv-records benchmarks/results/ccp_cv_protocol_ccp64.json \
        benchmarks/results/ccp_cv_protocol_ccp64wide.json
    python benchmarks/ccp_backbones.py --quick      # two quick CV runs of a random UNet, then the choice
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import _common

NAME = "ccp_backbones"


def _n_parameters(model):
    """UNet parameters of a backbone folder (None when it cannot be read, e.g. ``random``)."""
    config = Path(str(model)) / "unet" / "config.json"
    if not config.is_file():
        return None
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_config(json.loads(config.read_text()))
    return int(sum(p.numel() for p in unet.parameters()))


def summarise(record):
    """One backbone's entry: what it is and what the protocol's CV chose for it."""
    table = record["cv_table"]
    best = max(table, key=lambda r: r["cv_miou"])
    training = record.get("cv_model_training") or {}
    sessions = training.get("sessions") or []
    return {"model": record["cv_model"], "backbone_sha256": record.get("backbone_sha256"),
            "preset": (training.get("hparams") or {}).get("preset"), "step": training.get("step"),
            "training_cpu_seconds": sum(s.get("cpu_seconds") or 0 for s in sessions) or None,
            "unet_parameters": _n_parameters(record["cv_model"]),
            "chosen": record["chosen"], "cv_miou": best["cv_miou"], "fold_miou": best["fold_miou"],
            "cv_seconds": record.get("cv_seconds"), "n_candidates": len(table)}


def choose(entries):
    """Index of the chosen backbone and the paired comparison of the two best (the module's rule)."""
    order = sorted(range(len(entries)), key=lambda i: -entries[i]["cv_miou"])
    top, second = order[0], order[1]
    diff = np.subtract(entries[top]["fold_miou"], entries[second]["fold_miou"])
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
    comparison = {"higher": entries[top]["model"], "lower": entries[second]["model"],
                  "paired_differences": diff.tolist(), "mean_difference": float(diff.mean()), "se": se,
                  "within_one_se": bool(diff.mean() <= se)}
    if comparison["within_one_se"]:
        cost = [entries[i]["unet_parameters"] or 0 for i in (top, second)]
        chosen = (top, second)[int(cost[1] < cost[0])]
        comparison["reason"] = "within one SE: the backbone with fewer UNet parameters"
    else:
        chosen = top
        comparison["reason"] = "higher CV mIoU by more than one SE"
    return chosen, comparison


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cv-records", type=Path, nargs="+", default=[],
                   help="ccp_cv_protocol.py --skip-test records, one per backbone")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ccp-backbones-") as tmp, _common.torch_threads(args.threads):
        paths = list(args.cv_records)
        if args.quick:  # the same random UNet twice: equal scores, so the rule's tie-break decides
            import ccp_cv_protocol

            threads = [] if args.threads is None else ["--threads", str(args.threads)]
            paths = [ccp_cv_protocol.main(["--quick", "--skip-test", *threads, "--out", str(Path(tmp) / f"cv{k}.json")])
                     for k in range(2)]
        if len(paths) < 2:
            p.error("give two or more --cv-records (or --quick)")
        records = [json.loads(Path(path).read_text()) for path in paths]
        folds = {(r["folds"], r["data"]) for r in records}
        if len(folds) != 1:
            p.error(f"the records' CV differs (folds, data): {sorted(folds)}")
        entries = [{"cv_record": str(path), **summarise(r)} for path, r in zip(paths, records)]
        chosen, comparison = choose(entries)
    payload = {"rule": __doc__[__doc__.index("The rule"):__doc__.index("This script")].strip(),
               "folds": records[0]["folds"], "data": records[0]["data"], "backbones": entries,
               "comparison": comparison, "chosen": entries[chosen]["model"],
               "chosen_cv_record": entries[chosen]["cv_record"],
               "backbone_sha256": entries[chosen]["backbone_sha256"]}
    path = _common.write_json(NAME, payload, args.out, "cpu")
    _common.print_table(entries, ["model", "preset", "step", "training_cpu_seconds", "cv_miou"],
                        title="CCP backbones: the protocol's CV (mIoU %)")
    print(f"chosen: {payload['chosen']} ({comparison['reason']}); wrote {path}")
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
