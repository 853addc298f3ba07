"""The "Example run" of docs/cli.md: fit / evaluate / predict / predict --resume through the ``sklearn-ddpm`` CLI.

Builds temporary folders of Weizmann horses in the layout docs/cli.md describes (photos + 0/1
masks, a ``classes.txt`` naming background and horse), then runs the console script in a
subprocess, as a user would:

1. ``fit`` on the first 10 ``labeled_pool`` horses with the bundled backbone (no ``--model``),
   ``--n-estimators 4 --max-epochs 20 --max-pixels-per-image 5000``;
2. ``evaluate`` on the 20 first ``test`` horses (evaluation only: never trained on);
3. ``predict`` 3 of those test photos with ``--overlay --uncertainty``;
4. the same ``predict`` again with ``--resume`` (nothing left to do).

The record keeps every command line, its wall time (process start, imports and model loading
included), its exit status and its output (progress bars reduced to their last state), the
per-class IoU and mIoU parsed from the table ``evaluate`` printed, and the git commit (with any
uncommitted package files) before and after the run.

Examples
--------
    python benchmarks/cli_example.py --threads 1          # the docs' run, a few minutes on a CPU
    python benchmarks/cli_example.py --quick --threads 1  # 2 train + 2 test images, 1 MLP, 1 epoch
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

NAME = "cli_example"
CLASSES = ("background", "horse")
FULL = {"n_train": 10, "n_test": 20, "n_predict": 3, "n_estimators": 4, "max_epochs": 20,
        "max_pixels_per_image": 5000}
QUICK = {"n_train": 2, "n_test": 2, "n_predict": 2, "n_estimators": 1, "max_epochs": 1,
         "max_pixels_per_image": 5000}


def git_state():
    """HEAD commit and the package files that differ from it (other work in the tree), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_common.REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sklearn_ddpm"], cwd=_common.REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": head, "uncommitted_package_files": [line[3:] for line in dirty if line.strip()]}


def build_parser():
    return _common.parser(__doc__.splitlines()[0])


def cli_command():
    """The console script next to this Python (the venv's ``sklearn-ddpm``), else ``python -m sklearn_ddpm.cli``."""
    script = Path(sys.executable).parent / "sklearn-ddpm"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sklearn_ddpm.cli"]


def stage_folders(work, settings):
    """Copy the Weizmann photos and masks into the docs' folder layout; return the folders and names."""
    root = _common.DATA_DIR / "weizmann_horse"
    splits = json.loads((root / "splits.json").read_text())
    train = splits["labeled_pool"][:settings["n_train"]]
    test = splits["test"][:settings["n_test"]]
    folders = {name: work / name for name in ("photos", "masks", "test_photos", "test_masks", "new_photos")}
    for folder in folders.values():
        folder.mkdir()
    for names, photos, masks in ((train, "photos", "masks"), (test, "test_photos", "test_masks")):
        for name in names:
            shutil.copy(root / "images" / f"{name}.jpg", folders[photos])
            shutil.copy(root / "masks" / f"{name}.png", folders[masks])
    for name in test[:settings["n_predict"]]:
        shutil.copy(root / "images" / f"{name}.jpg", folders["new_photos"])
    (work / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return folders, {"train": train, "test": test, "predict": test[:settings["n_predict"]]}


def clean_output(text):
    """Output as a terminal would leave it: each ``\\r``-redrawn progress bar reduced to its last state."""
    lines = []
    for line in text.split("\n"):  # not splitlines(): it splits at "\r" too
        parts = [p for p in line.split("\r") if p.strip()]
        if parts:
            lines.append(parts[-1].rstrip())
    return "\n".join(lines)


def run(argv, work, env_note):
    """Run ``sklearn-ddpm argv`` in ``work``; return its record (command, seconds, rc, output)."""
    start = time.perf_counter()
    # Bytes, not text=True: universal newlines would turn the progress bars' "\r" into line breaks.
    done = subprocess.run(cli_command() + argv, cwd=work, capture_output=True)
    seconds = time.perf_counter() - start
    stdout, stderr = (stream.decode("utf-8", errors="replace") for stream in (done.stdout, done.stderr))
    record = {"command": "sklearn-ddpm " + " ".join(argv), "seconds": round(seconds, 2), "returncode": done.returncode,
              "stdout": clean_output(stdout), "stderr": clean_output(stderr), **env_note}
    print(f"$ {record['command']}   # {seconds:.1f} s, exit {done.returncode}", flush=True)
    for stream in ("stderr", "stdout"):
        if record[stream]:
            print(record[stream], flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"{record['command']} exited with {done.returncode}:\n{stderr}")
    return record


def parse_iou_table(text):
    """Per-class IoU %, pixels, mIoU % and image count from the table ``evaluate`` printed."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\s+(.+?)\s+([\d.]+)\s+([\d,]+)\s*$", line)
        if m:
            rows.append({"class": int(m.group(1)), "name": m.group(2), "iou_percent": float(m.group(3)),
                         "pixels": int(m.group(4).replace(",", ""))})
    m = re.search(r"mIoU ([\d.]+) % over (\d+) classes and (\d+) images", text)
    if m is None:
        raise ValueError(f"no mIoU line in the evaluate output:\n{text}")
    return {"per_class": rows, "miou_percent": float(m.group(1)), "n_classes": int(m.group(2)),
            "n_images": int(m.group(3))}


def main(argv=None):
    args = build_parser().parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    settings = QUICK if args.quick else FULL
    common = (["--threads", str(args.threads)] if args.threads is not None else []) + \
        (["--device", args.device] if args.device is not None else [])
    git_before = git_state()
    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders, names = stage_folders(work, settings)
        fit_argv = ["fit", "photos/", "masks/", "--classes", "classes.txt",
                    "--n-estimators", str(settings["n_estimators"]), "--max-epochs", str(settings["max_epochs"]),
                    "--max-pixels-per-image", str(settings["max_pixels_per_image"]), *common, "-o", "seg.joblib"]
        predict_argv = ["predict", "seg.joblib", "new_photos/", "-o", "predictions/", "--overlay", "--uncertainty",
                        *common]
        steps = [
            run(fit_argv, work, {"step": "fit", "images": f"weizmann_horse/labeled_pool[:{settings['n_train']}]"}),
            run(["evaluate", "seg.joblib", "test_photos/", "test_masks/", *common, "--quiet"], work,
                {"step": "evaluate", "images": f"weizmann_horse/test[:{settings['n_test']}]"}),
            run(predict_argv, work, {"step": "predict", "images": names["predict"]}),
            run(predict_argv + ["--resume"], work, {"step": "predict --resume", "images": names["predict"]}),
        ]
        written = sorted(str(p.relative_to(work / "predictions")) for p in (work / "predictions").rglob("*")
                         if p.is_file())
    evaluation = parse_iou_table(steps[1]["stdout"])
    _common.print_table([{"step": s["step"], "seconds": s["seconds"]} for s in steps], ["step", "seconds"],
                        title=f"sklearn-ddpm CLI journey ({device}); mIoU {evaluation['miou_percent']} %")
    payload = {
        "device": device, "quick": args.quick, "n_runs": 1,
        "backbone": "bundled (sklearn_ddpm/_data/horse_ddpm, no --model)",
        "settings": settings, "classes": list(CLASSES), "images": names,
        "steps": steps, "evaluate": evaluation, "prediction_files": written,
        "total_seconds": round(sum(s["seconds"] for s in steps), 2),
        "git": {"before": git_before, "after": git_state()},
        "note": "wall time of each command as a subprocess: interpreter start, imports and model loading included",
    }
    path = _common.write_json(NAME, payload, args.out, device)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
