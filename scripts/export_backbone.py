"""Export the EMA UNet of a ``train_ddpm`` run as the package's bundled backbone.

Writes a ``DDPMPipeline.save_pretrained``-style folder (``model_index.json``, ``unet/`` with fp16
safetensors, ``scheduler/``) plus ``MODEL_CARD.md`` and the checkpoint's training record
``train_info.json`` (steps, seconds, CPU seconds, machine and autocast per session) the card is made from, replacing the destination folder atomically.
Load it with ``UNet2DModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32)``.

Usage (from the repository root)::

    .venv/bin/python scripts/export_backbone.py .cache/horse_ddpm
    .venv/bin/python scripts/export_backbone.py .cache/horse_ddpm/checkpoints/step-00002000.pt \\
        --out sklearn_ddpm/_data/horse_ddpm
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sklearn_ddpm.ddpm_training import export_checkpoint  # noqa: E402
from sklearn_ddpm.ddpm_training._card import model_card, reproduce_command  # noqa: E402

DEFAULT_OUT = REPO / "sklearn_ddpm" / "_data" / "horse_ddpm"
HORSE_DATA = (
    "The 218 Weizmann Horse Database photographs of the project's `unlabeled` (168) and "
    "`labeled_pool` (50) splits (`shared/data/weizmann_horse/splits.json`); no image of the `test` "
    "split was used, and no mask was used (training is unsupervised). Research use only; cite "
    "E. Borenstein and S. Ullman, \"Class-specific, top-down segmentation\", ECCV 2002."
)


def _run_info(source):
    """train_info.json of the run that holds ``source`` (a run folder, checkpoints/ or a file)."""
    source = Path(source).resolve()
    for folder in (source, source.parent, source.parent.parent):
        info = folder / "train_info.json"
        if info.is_file():
            return json.loads(info.read_text())
    return {}


def _model_card(record, n_bytes, data_text, dtype):
    """The bundled backbone's card: the package's model card with the horse run's own reproduce recipe."""
    hp = record["hparams"]
    reproduce = f"""From the repository root, next to the project's `shared/` folder:

```sh
python -c "import json; s = json.load(open('../shared/data/weizmann_horse/splits.json')); \\
print('\\n'.join(n + '.jpg' for n in s['unlabeled'] + s['labeled_pool']))" > train_images.txt
{reproduce_command(record, "../shared/data/weizmann_horse/images", "runs/horse_ddpm", " --image-list train_images.txt")}
python scripts/export_backbone.py runs/horse_ddpm
```

The run is resumable: re-running the `train-ddpm` command after an interruption continues from the last
checkpoint. On the same hardware and thread count it reproduces the weights exactly; elsewhere it gives a
statistically equivalent model."""
    limitations = f"""A small model trained for a short time on 218 images: its samples are poor, and this card does not report
segmentation accuracy (see the project's benchmarks for that). It has only seen horse photographs, at
{hp['image_size']}x{hp['image_size']}. The `test` split images remain unseen, so evaluating on them is fair."""
    return model_card(record, n_bytes=n_bytes, dtype={"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "fp32"),
                      title="Bundled backbone: small DDPM trained on Weizmann horses", data_text=data_text,
                      reproduce=reproduce, limitations=limitations)


def _hours(seconds):
    return "not recorded" if seconds is None else f"{seconds / 3600:.2f}"


def _sessions_section(record):
    """The sessions the run trained in (each resumed from the last checkpoint of the one before)."""
    sessions = record.get("sessions") or []
    if not sessions:
        return ""
    rows = "\n".join(
        f"| {i} | {s.get('start_step', '?')}–{s.get('end_step', '?')} | {s.get('started', 'not recorded')} | "
        f"{s.get('cpu', 'not recorded')} | {s.get('threads', '?')} | {s.get('autocast', 'float32')} | "
        f"{_hours(s.get('cpu_seconds'))} |" for i, s in enumerate(sessions, 1))
    return f"""
## Training sessions
The run trained in {len(sessions)} session(s), each resumed from the last checkpoint of the one before
(`train_info.json`, `sessions`):

| session | steps | started | CPU | threads | autocast | CPU hours |
|---|---|---|---|---|---|---|
{rows}
"""


def _selection_section(selection, record, note):
    """How this snapshot was chosen: the run's scored snapshots and their CV scores, read from ``selection``
    (a ``benchmarks/weizmann_backbones.py`` record)."""
    if selection is None:
        return ""
    scored = json.loads(Path(selection).read_text())["backbones"].values()
    mine = [b for b in scored if Path(str(b.get("source", ""))).name == record["checkpoint"]]
    if not mine:
        raise SystemExit(f"{selection} scored no snapshot named {record['checkpoint']}.")
    run = Path(mine[0]["source"]).parent
    snapshots = sorted((b for b in scored if Path(str(b.get("source", ""))).parent == run
                        and b.get("cv_miou") is not None), key=lambda b: b["step"])
    best = max(snapshots, key=lambda b: b["cv_miou"])
    rows = "\n".join(
        f"| {b['step']:,}{' (bundled)' if b['step'] == record['step'] else ''} | {b['cv_miou']:.1f} | "
        f"{sum(b['test_miou_per_seed']) / len(b['test_miou_per_seed']):.1f} |" for b in snapshots)
    try:
        shown = Path(selection).resolve().relative_to(REPO)
    except ValueError:
        shown = Path(selection).name
    chosen = (f"the highest CV mIoU of them (step {best['step']:,})" if best["step"] == record["step"]
              else f"not the highest CV mIoU (step {best['step']:,} has it)")
    text = f"""
## How this snapshot was chosen
This snapshot is one of {len(snapshots)} of the run that were scored with the same classifier settings
(`{shown}`, written by `benchmarks/weizmann_backbones.py`): 4-fold `GroupKFold` cross-validation on
the 20 labelled `labeled_pool` horses (one classifier seed) and the `test` split, reported only. The
bundled snapshot has {chosen}.

| snapshot (step) | CV mIoU | test mIoU (mean of 3 seeds; not used for the choice) |
|---|---|---|
{rows}
"""
    return text + (f"\n{note}\n" if note else "")


def card_text(record, n_bytes, dtype="float16"):
    """The whole card: the package's model card, the training sessions and, when ``record["selection"]``
    names the record that scored the run's snapshots, how this one was chosen among them."""
    selection = record.get("selection") or {}
    card = _model_card(record, n_bytes, record.get("data") or HORSE_DATA, dtype).rstrip("\n") + "\n"
    path = selection.get("record")
    return card + _sessions_section(record) + _selection_section(
        None if path is None else REPO / path, record, selection.get("note", ""))


def _write_card(folder, record, n_bytes, args, keep_exported=False):
    card = card_text(record, n_bytes, args.dtype)
    path = Path(folder) / "MODEL_CARD.md"
    if keep_exported and path.is_file():  # the weights were exported then, not now
        old = re.search(r"^\| exported \|.*$", path.read_text(), re.M)
        if old:
            card = re.sub(r"^\| exported \|.*$", lambda _: old.group(0), card, count=1, flags=re.M)
    path.write_text(card)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="training output folder, its checkpoints/ folder, or a checkpoint file")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"destination (default: {DEFAULT_OUT})")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--max-mb", type=float, default=15.0, help="refuse weights larger than this")
    parser.add_argument("--data", default=HORSE_DATA, help="training-data paragraph of the model card")
    parser.add_argument("--selection", default=None,
                        help="weizmann_backbones.py record that scored the run's snapshots: the card says how "
                             "this one was chosen among them")
    parser.add_argument("--selection-note", default="", help="a paragraph the card adds to how it was chosen")
    parser.add_argument("--card-only", action="store_true",
                        help="source is an exported folder: rewrite its MODEL_CARD.md from its train_info.json "
                             "(no checkpoint needed, the weights untouched)")
    args = parser.parse_args(argv)
    if args.card_only:
        folder = Path(args.source)
        record = json.loads((folder / "train_info.json").read_text())
        if args.selection:  # kept in the record, so the card regenerates from it alone
            record["selection"] = {"record": Path(args.selection).resolve().relative_to(REPO).as_posix(),
                                   "note": args.selection_note}
            (folder / "train_info.json").write_text(json.dumps(record, indent=1) + "\n")
        n_bytes = sum(p.stat().st_size for p in (folder / "unet").glob("*.safetensors"))
        _write_card(folder, record, n_bytes, args, keep_exported=True)
        print(f"Rewrote {folder / 'MODEL_CARD.md'}")
        return 0

    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        info = export_checkpoint(args.source, tmp, dtype=args.dtype)
        weights = list((tmp / "unet").glob("*.safetensors"))
        n_bytes = sum(p.stat().st_size for p in weights)
        if n_bytes > args.max_mb * 1e6:
            raise SystemExit(f"Weights are {n_bytes / 1e6:.1f} MB > --max-mb {args.max_mb}.")
        run_info = _run_info(args.source)
        # The card's source: the exported checkpoint's own training record (the run's train_info.json
        # may be at another step).
        record = {**{k: run_info.get(k) for k in ("n_images", "unet_kwargs", "scheduler", "torch")},
                  **{k: info[k] for k in ("step", "train_seconds", "hparams", "sessions", "n_params", "cpu_seconds")},
                  "checkpoint": Path(info["checkpoint"]).name, "data": args.data}
        if args.selection:
            record["selection"] = {"record": Path(args.selection).resolve().relative_to(REPO).as_posix(),
                                   "note": args.selection_note}
        _write_card(tmp, record, n_bytes, args)
        (tmp / "train_info.json").write_text(json.dumps(record, indent=1) + "\n")
        # mkdtemp and the safetensors writer create owner-only files; the package data must be readable.
        os.chmod(tmp, 0o755)
        for path in tmp.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Exported step {info['step']} ({n_bytes / 1e6:.1f} MB of {args.dtype} weights) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
