"""A new user's first hour, replayed through the installed command line (issue 26, "Done when").

The issue's trial: a user fitted ``sklearn-ddpm fit`` with its defaults on two photos of their own with
many declared classes, predicted, evaluated, and pressed Ctrl-C at each stage. This script replays that
journey on the project's own photos and records what the user would see:

1. "Own photos": the first ``--n-train`` CCP photos of ``labeled_pool`` with their fine masks, all 59
   classes declared (``--classes``), as the user declared 19 for 14 present; new photos to segment:
   the next ``--n-new`` of ``labeled_pool`` (never ``test``).
2. ``fit IMAGES MASKS -o seg.skddpm`` with every default; ``predict``; ``evaluate --json``. For each:
   exit status, wall seconds, the last lines of stderr, whether a traceback was printed. The predicted
   label maps are checked as a user would (not all background), and the fitted model's
   ``predict_proba`` on the new photos is checked finite, in Python.
3. Ctrl-C (SIGINT to the command's process group, as a terminal sends it) during ``fit`` (over the
   existing ``seg.skddpm``), ``predict``, ``evaluate`` and ``train-ddpm``, at a moment that
   is marked by its progress bar (features, MLP training, first image done): exit status (130 expected), stderr line count,
   traceback, whether ``seg.skddpm`` is byte-identical afterwards and no temporary file is left, and
   for ``train-ddpm`` whether a checkpoint exists and the message says how to resume.

Writes ``benchmarks/results/new_user_journey.json``. Run it from the virtual environment a fresh
clone's ``make install`` made, so that it exercises what a user installs.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import DATA_DIR, REPO_ROOT, machine, parser, write_json

CLI = str(Path(sys.executable).with_name("sklearn-ddpm"))
BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"  # what `fit` uses without --model


def _md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest() if Path(path).exists() else None


def _run(args, interrupt_at=None, delay=0.0, cwd=None):
    """Run ``sklearn-ddpm ARGS``; with ``interrupt_at`` (a text), send SIGINT to its process group
    ``delay`` seconds after that text appears on its stderr (a progress bar: the stage the user watches)."""
    start = time.monotonic()
    process = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, cwd=cwd)
    chunks, sent = [], {}

    def interrupt():
        if process.poll() is None:
            sent["after_s"] = round(time.monotonic() - start, 1)
            os.killpg(process.pid, signal.SIGINT)

    def read_stderr():
        # os.read returns what is there: progress bars end their updates with "\r", not a newline,
        # and a buffered read would wait for more than a short first bar
        while piece := os.read(process.stderr.fileno(), 4096):
            chunks.append(piece.decode(errors="replace"))
            if interrupt_at is not None and not sent and interrupt_at in "".join(chunks[-40:]):
                sent["marker_s"] = round(time.monotonic() - start, 1)
                threading.Timer(delay, interrupt).start()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = process.stdout.read().decode(errors="replace")
    process.wait()
    reader.join()
    stderr = "".join(chunks)
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    return {
        "command": " ".join(["sklearn-ddpm", *[Path(a).name if os.sep in a else a for a in args]]),
        "returncode": process.returncode,
        "wall_s": round(time.monotonic() - start, 1),
        "interrupt_when_stderr_shows": interrupt_at,
        "interrupt_delay_s": delay,
        "marker_seen_after_s": sent.get("marker_s"),
        "interrupted_after_s": sent.get("after_s"),
        "stderr_lines": len(lines),
        "stderr_tail": lines[-3:],
        "stdout_tail": stdout.strip().splitlines()[-3:],
        "traceback": "Traceback (most recent call last)" in stderr,
    }


def _own_photos(root, n_train, n_new):
    """Copy CCP ``labeled_pool`` photos into a user's folders: train/{images,masks}, new/{images,masks}."""
    ccp = DATA_DIR / "ccp_clothing"
    pool = json.loads((ccp / "splits.json").read_text())["labeled_pool"]
    for part, names in (("train", pool[:n_train]), ("new", pool[n_train:n_train + n_new])):
        for kind in ("images", "masks"):
            (root / part / kind).mkdir(parents=True)
        for name in names:
            stem = Path(name).stem
            shutil.copy(ccp / "images" / f"{stem}.jpg", root / part / "images")
            shutil.copy(ccp / "masks" / f"{stem}.png", root / part / "masks")
    names = json.loads((ccp / "classes.json").read_text())["fine_classes"]
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    return len(names)


def _check_predictions(root, model):
    """What a user sees in the label maps, and the model's probabilities checked in Python."""
    from PIL import Image

    from sklearn_ddpm import load_segmenter

    outputs = sorted((root / "out").glob("*.png"))
    maps = [np.asarray(Image.open(p)) for p in outputs]
    truths = [np.asarray(Image.open(root / "new" / "masks" / p.name)) for p in outputs]
    images = [np.asarray(Image.open(root / "new" / "images" / f"{p.stem}.jpg").convert("RGB")) for p in outputs]
    segmenter = load_segmenter(model)
    probabilities = segmenter.predict_proba(images)
    return {
        "n_label_maps": len(maps),
        "fraction_predicted_background": float(np.mean([np.mean(m == 0) for m in maps])),
        "fraction_true_background": float(np.mean([np.mean(t == 0) for t in truths])),
        "classes_predicted": sorted({int(c) for m in maps for c in np.unique(m)}),
        "probabilities_all_finite": bool(all(np.isfinite(p).all() for p in probabilities)),
        "probabilities_sum_to_one": bool(all(np.allclose(p.sum(-1), 1, atol=1e-3) for p in probabilities)),
    }


def main():
    arguments = parser(__doc__)
    arguments.add_argument("--n-train", type=int, default=2)
    arguments.add_argument("--n-new", type=int, default=3)
    arguments.add_argument("--only-interrupts", action="store_true",
                           help="fit, then only the Ctrl-C stages (no uninterrupted predict/evaluate)")
    args = arguments.parse_args()
    # A command started in the background by a shell ignores SIGINT, and its children inherit that
    # (Python then installs no KeyboardInterrupt handler): restore the terminal's default so the
    # commands below receive Ctrl-C as from a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    record = {"cli": CLI, "data": f"ccp_clothing labeled_pool[:{args.n_train}] (fit), "
                                  f"[{args.n_train}:{args.n_train + args.n_new}] (new photos); fine masks",
              "model": str(BUNDLED_MODEL), "stages": {}, "interrupts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        record["n_classes_declared"] = _own_photos(root, args.n_train, args.n_new)
        model = root / "seg.skddpm"
        stages = record["stages"]
        fit_args = ["fit", str(root / "train/images"), str(root / "train/masks"), "-o", str(model),
                    "--classes", str(root / "classes.txt")]
        predict_args = ["predict", str(model), str(root / "new/images"), "-o", str(root / "out")]
        evaluate_args = ["evaluate", str(model), str(root / "new/images"), str(root / "new/masks"),
                         "--json", str(root / "evaluation.json")]
        stages["help"] = _run(["--help"])
        stages["fit"] = _run(fit_args)
        if args.only_interrupts:  # a rerun of the Ctrl-C part: predict and evaluate only interrupted
            record["note"] = "--only-interrupts: predict and evaluate ran only to be interrupted"
        else:
            stages["predict"] = _run(predict_args)
            stages["evaluate"] = _run(evaluate_args)
        if (root / "evaluation.json").exists():
            evaluation = json.loads((root / "evaluation.json").read_text())
            stages["evaluate"]["miou"] = evaluation.get("miou")
        print(json.dumps(stages, indent=1), flush=True)
        if model.exists() and not args.only_interrupts:
            record["predictions"] = _check_predictions(root, model)
            print(json.dumps(record["predictions"], indent=1), flush=True)

        # Ctrl-C at each stage, once its progress bar shows the stage under way
        before = _md5(model)
        interrupts = record["interrupts"]
        # predict and evaluate move their bars per batch of images (the UNet's), so a few photos show
        # 0/N until the end: their Ctrl-C comes after 40 % of the stage's uninterrupted wall time
        # (measured above; 20 s with --only-interrupts). A fixed 20 s once landed after a fast
        # evaluate had finished, during interpreter shutdown.
        def mid_run(stage):
            wall = stages.get(stage, {}).get("wall_s")
            return 20.0 if wall is None else round(0.4 * wall, 1)

        for name, stage_args, marker, delay in (
                ("fit, extracting features", fit_args, "DDPM features", 0.0),
                ("fit, training the MLPs", fit_args, "Training pixel MLPs", 0.0),
                ("predict, mid-run", [*predict_args[:-1], str(root / "out2")], "predict:", mid_run("predict")),
                ("evaluate, mid-run", evaluate_args, "evaluate:", mid_run("evaluate"))):
            result = _run(stage_args, interrupt_at=marker, delay=delay)
            result["model_file_unchanged"] = _md5(model) == before
            result["files_left_beside_model"] = sorted(p.name for p in root.iterdir()
                                                       if p.name.startswith(".") or p.suffix == ".tmp")
            interrupts[name] = result
        record["predict_outputs_after_interrupt"] = sorted(p.name for p in (root / "out2").rglob("*")) \
            if (root / "out2").exists() else []
        run_dir = root / "ddpm"
        train_args = ["train-ddpm", str(root / "train/images"), str(run_dir), "--preset", "tiny",
                      "--max-steps", "100000", "--checkpoint-every", "1000"]
        result = _run(train_args, interrupt_at="loss=")
        result["checkpoints"] = sorted(p.name for p in run_dir.rglob("*") if "checkpoint" in p.name)[:5]
        result["says_how_to_resume"] = any("resume" in line.lower() or "sklearn-ddpm train-ddpm" in line
                                           for line in result["stderr_tail"] + result["stdout_tail"])
        interrupts["train-ddpm"] = result
    record["verdict"] = {
        "no_traceback": not any(r["traceback"] for r in [*record["stages"].values(), *interrupts.values()]),
        "interrupts_exit_130": all(r["returncode"] == 130 for r in interrupts.values()),
        "model_file_unchanged_by_interrupts": all(r.get("model_file_unchanged", True) for r in interrupts.values()),
        "predictions_finite": record.get("predictions", {}).get("probabilities_all_finite"),
    }
    print(json.dumps({"interrupts": interrupts, "verdict": record["verdict"]}, indent=1))
    record["load_average_after"] = machine()["load_average_1min"]
    write_json("new_user_journey", record, out=args.out)


if __name__ == "__main__":
    main()
