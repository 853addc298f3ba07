"""Tables of docs/multiclass.md: CCP's rare classes, its backbones chosen by CV, per-class test IoU.

Read from ``rare_classes*.json`` (``benchmarks/rare_classes.py``), ``ccp_backbones.json``
(``benchmarks/ccp_backbones.py``) and the ``ccp_cv_protocol*.json`` records; registered in
``report.py``'s ``TABLES``.
"""

import numpy as np
from _report_records import CCP_CLASS_NAMES, backbone, date, link, load, machine, protocol_settings, table

#: CCP's coarse classes that stayed at IoU 0-7 (issue 29)
RARE = ("dress", "legwear", "hat_glasses", "accessories")


def _class(name):
    return CCP_CLASS_NAMES.get(name, name)


def mean_iou(per_class_iou, classes):
    """Mean IoU of ``classes`` in a per-class dict (None, a class absent: left out)."""
    return float(np.nanmean([np.nan if per_class_iou[c] is None else per_class_iou[c] for c in classes]))


def _iou(value):
    return "—" if value is None else f"{value:.1f}"


def rare_classes(prefix, name="rare_classes_ccp"):
    """CV mIoU and per-class IoU of each rare-class lever (a rare_classes*.json record)."""
    r = load(name)
    classes = r["class_names"]
    rare = set(r["rare_classes"])
    rows = []
    for label, res in r["results"].items():
        rows.append((f"`{label}`", f"{res['cv_miou']:.1f} ± {res['cv_miou_std_over_folds']:.1f}",
                     _iou(res["rare_mean_iou"]), *(_iou(res["per_class_iou"][c]) for c in classes)))
    header = ("lever", f"CV mIoU ± fold std ({r['folds']} folds)", "rare classes, mean IoU",
              *(f"**{_class(c)}**" if c in rare else _class(c) for c in classes))
    return table(header, rows) + (
        f"\n\nPer-class IoU of the confusion matrix summed over the held-out folds; rare classes in bold. "
        f"Backbone {backbone(r)} ({r['backbone_note']}); {machine(r)}; {date(r)}; record {link(name, prefix)}.")


def ccp_backbones(prefix):
    """The CCP backbones compared by the protocol's CV, and the one chosen (ccp_backbones.json)."""
    r = load("ccp_backbones")
    rows = []
    for b in r["backbones"]:
        settings = protocol_settings(b["chosen"])
        hours = "not recorded" if b["training_cpu_seconds"] is None else f"{b['training_cpu_seconds'] / 3600:.2f}"
        params = "?" if b["unet_parameters"] is None else f"{b['unet_parameters'] / 1e6:.2f} M"
        mark = " (chosen)" if b["model"] == r["chosen"] else ""
        rows.append((f"`{b['preset']}`{mark}", params, f"{b['step']:,}", hours, f"{b['cv_miou']:.2f}",
                     ", ".join(f"{v:.1f}" for v in b["fold_miou"]), settings,
                     "not recorded" if not b["backbone_sha256"] else f"`{b['backbone_sha256'][:12]}`",
                     f"{b['cv_seconds'] / 60:.0f} min"))
    c = r["comparison"]
    return table(("preset", "UNet parameters", "steps", "training CPU hours", "CV mIoU of its chosen settings",
                  "fold scores", "settings chosen by CV", "backbone hash", "CV time"), rows) + (
        f"\n\nPaired fold differences (higher minus lower): "
        f"{', '.join(f'{d:+.1f}' for d in c['paired_differences'])}; mean {c['mean_difference']:+.2f}, "
        f"SE {c['se']:.2f}: {c['reason']}. {machine(r)}; {date(r)}; record {link('ccp_backbones', prefix)}.")


PROTOCOL_RECORDS = (("ccp_cv_protocol", "3,616-step `64` backbone (2026-11-30)"),
                    ("ccp_cv_protocol_5709steps", "5,709-step `64` backbone (2026-11-30)"),
                    ("ccp_cv_protocol_chosen_backbone", "4,162-step `64` backbone, chosen by CV (2026-12-07)"))


def ccp_per_class(prefix):
    """Per-class test IoU of the CCP protocol's records (all 130 test photos, mean over seeds)."""
    records = [(name, label, load(name)) for name, label in PROTOCOL_RECORDS]
    classes = list(records[0][2]["test"]["rows"][0]["per_class_iou"])
    rows = []
    for name, label, r in records:
        row = r["test"]["rows"][0]
        iou = row["per_class_iou"]
        rows.append((label, f"{row['miou_mean']:.1f}", f"{mean_iou(iou, RARE):.1f}",
                     *(_iou(iou[c]) for c in classes), link(name, prefix)))
    return table(("protocol run", "test mIoU", "rare classes, mean IoU",
                  *(f"**{_class(c)}**" if c in RARE else _class(c) for c in classes), "record"), rows)


# -- inline figures of docs/multiclass.md (registered in _report_figures.FIGURES) -------------------------

CHOSEN = "ccp_cv_protocol_chosen_backbone"


def stage2_levers(name=CHOSEN):
    """The protocol's stage-2 rows against the stage-1 winner: ``"lever CV (diff), ..."``."""
    table_ = load(name)["cv_table"]
    best1 = max((c for c in table_ if c["stage"].startswith("1")), key=lambda c: c["cv_miou"])
    labels = (("max_pixels_per_image", "2,000 px per photo"), ("n_noise_samples", "4 noise draws"),
              ("max_pixels_per_class", "≤ 250 px per class"), ("class_weight", "class-weighted loss"))
    parts = [f"stage-1 winner {best1['cv_miou']:.1f}"]
    for c in (c for c in table_ if c["stage"].startswith("2")):
        changed = [label for key, label in labels if c.get(key) != best1.get(key)]
        parts.append(f"{' + '.join(changed)} {c['cv_miou']:.1f} ({c['cv_miou'] - best1['cv_miou']:+.1f})")
    return ", ".join(parts)


def protocol_rare(name=CHOSEN):
    """Mean test IoU of the four rare classes (mean over seeds) of a protocol record."""
    return f"{mean_iou(load(name)['test']['rows'][0]['per_class_iou'], RARE):.1f}"
