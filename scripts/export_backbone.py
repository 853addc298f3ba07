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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="training output folder, its checkpoints/ folder, or a checkpoint file")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"destination (default: {DEFAULT_OUT})")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--max-mb", type=float, default=15.0, help="refuse weights larger than this")
    parser.add_argument("--data", default=HORSE_DATA, help="training-data paragraph of the model card")
    args = parser.parse_args(argv)

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
        (tmp / "MODEL_CARD.md").write_text(_model_card(record, n_bytes, args.data, args.dtype))
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
