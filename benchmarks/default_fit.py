"""The default fit as a user runs it: ``sklearn-ddpm fit`` with no tuning flag on 20 labelled horses (issue 26).

Copies the first ``n`` images of Weizmann's ``labeled_pool`` and their masks into a temporary
folder, runs ``sklearn-ddpm fit IMAGES MASKS -o MODEL`` (bundled DDPM, every default) in a child
process and records its wall and CPU seconds, peak memory and the machine's load; then
``sklearn-ddpm evaluate`` on the test split (reported, never used for a choice: the defaults were
chosen by cross-validation on ``labeled_pool``, ``benchmarks/pixel_caps.py``). Target: the fit
within 3 minutes on the project's 2-core CPU.
"""

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DATA_DIR, REPO_ROOT, machine, parser, write_json

BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"


def _copy_split(names, root, out, with_masks):
    (out / "images").mkdir(parents=True)
    if with_masks:
        (out / "masks").mkdir()
    for name in names:
        shutil.copy(next((root / "images").glob(name + ".*")), out / "images")
        if with_masks:
            shutil.copy(next((root / "masks").glob(name + ".*")), out / "masks")


def _run(command):
    """``(seconds, child CPU seconds, child peak RSS bytes)`` of one command; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, after.ru_maxrss * 1024


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--n-test", type=int, default=None, help="test images to evaluate (default: all 100)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.n_test = 2, 2
    root = DATA_DIR / "weizmann_horse"
    splits = json.loads((root / "splits.json").read_text())
    cli = [sys.executable, "-m", "sklearn_ddpm.cli"]
    threads = ["--threads", str(args.threads)] if args.threads else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _copy_split(splits["labeled_pool"][: args.n], root, tmp / "train", True)
        _copy_split(splits["test"][: args.n_test], root, tmp / "test", True)
        model = tmp / "seg.skddpm"
        load_before = machine()["load_average_1min"]
        extra = ["--n-estimators", "2", "--max-epochs", "2"] if args.quick else []
        fit_s, fit_cpu, fit_rss = _run(cli + ["fit", str(tmp / "train/images"), str(tmp / "train/masks"),
                                              "-o", str(model), "--quiet", *threads, *extra])
        load_after_fit = machine()["load_average_1min"]
        scores = tmp / "scores.json"
        eval_s, _, _ = _run(cli + ["evaluate", str(model), str(tmp / "test/images"), str(tmp / "test/masks"),
                                   "--json", str(scores), *threads])
        evaluation = json.loads(scores.read_text())
    payload = {
        "model": str(BUNDLED_MODEL), "n_labelled": args.n, "command": "sklearn-ddpm fit IMAGES MASKS -o MODEL --quiet",
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "fit_peak_rss_bytes": fit_rss,
        "load_average_before": load_before, "load_average_after_fit": load_after_fit,
        "target_seconds": 180, "met": fit_s <= 180,
        "test": {"n_images": len(splits["test"][: args.n_test]), "evaluate_seconds": eval_s,
                 "miou": 100 * evaluation["miou"], "evaluation": evaluation,
                 "note": "scored once, after the defaults were chosen by CV on labeled_pool"},
    }
    path = write_json("default_fit" + ("_quick" if args.quick else ""), payload, args.out)
    miou = f"{100 * evaluation['miou']:.1f}"
    print(f"fit {fit_s:.0f} s wall, {fit_cpu:.0f} CPU s, peak {fit_rss / 2**30:.2f} GiB, load {load_before}->"
          f"{load_after_fit}; test mIoU {miou}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
