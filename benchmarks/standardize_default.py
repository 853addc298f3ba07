"""Should the pixel MLPs standardize their features by default? (issue 26: why units die)

``benchmarks/nan_dead_units.py`` found why more than half of the first-layer units die in an
all-pixels fit: the raw UNet features share a large mean (L1 norm 475 against a pre-activation
spread of 0.38 at initialisation), so one update moves a unit's pre-activation on every pixel at
once, and a unit pushed below zero everywhere gets no gradient again. With ``standardize=True`` no
unit died. Dead units waste the capacity the paper's MLP was sized for and are where the NaN of
issue 26 came from (a dead unit's eval BatchNorm gain of ~316 on a held-out pixel where it wakes).
A default is a choice, so it is made here under the CV-only protocol:

- Data: the first ``n`` (20) images of ``labeled_pool`` of Weizmann and of CCP (coarse, 11
  classes); ``GroupKFold(folds)``, one group per image; through
  :func:`sklearn_ddpm.model_selection.select_segmenter` with an explicit grid (one candidate at a
  time, the same splits); every other setting is the package default (``make_segmenter()``).
- Candidates: ``clf__standardize`` False (the current default, the paper's) and True.
- Rule, fixed before the run: standardize becomes the default if, on EACH dataset, its mean paired
  fold difference (standardized minus raw) is at least minus one standard error of those
  differences (sd / sqrt(folds)). It removes a defect (dead units), so it has to be not worse, not
  better. Fit seconds are recorded but do not decide (standardization costs one pass over at most
  100,000 training pixels).
- Then, whatever the rule says, both are fitted on the n images and scored once on the test split
  (``--score-test``), in the same run.

CCP runs on the bundled horse DDPM: there is no CCP backbone in this workspace.
Writes ``benchmarks/results/standardize_default.json``.
"""

import json
import time

import numpy as np

from _common import RESULTS_DIR, machine, parser, torch_threads, write_json
from pixel_caps import BUNDLED_MODEL, _load, _row, cv_setup

CANDIDATES = [("raw (current default)", {"clf__standardize": False}), ("standardized", {"clf__standardize": True})]
RULE = ("fixed before the run: standardize=True becomes the default if on each dataset its mean paired fold "
        "difference (standardized - raw) >= -1 standard error of the differences (sd ddof=1 / sqrt(folds))")


def _verdict(rows, n_folds):
    raw, std = (np.array(rows[label]["fold_miou"]) for label, _ in CANDIDATES)
    diff = std - raw
    se = float(np.std(diff, ddof=1) / np.sqrt(n_folds))
    return {"mean_paired_difference": float(diff.mean()), "standard_error": se, "paired_differences": diff.tolist(),
            "not_worse": bool(diff.mean() >= -se)}


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", choices=["weizmann", "ccp"], default=["weizmann", "ccp"])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--score-test", action="store_true")
    p.add_argument("--max-minutes", type=float, default=None, help="start nothing new after this; rerun to resume")
    args = p.parse_args(argv)
    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.model_selection import select_segmenter

    if args.quick:
        args.n, args.folds = 4, 2
    path = args.out or RESULTS_DIR / "standardize_default.json"
    payload = {"model": str(BUNDLED_MODEL), "protocol": __doc__, "rule": RULE, "n": args.n, "folds": args.folds,
               "backbone_note": "both datasets on the bundled horse DDPM (no CCP backbone in this workspace)",
               "datasets": {}}
    if path.exists():
        payload["datasets"] = json.loads(path.read_text()).get("datasets", {})
    began = time.monotonic()

    def out_of_time():
        return args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes

    with torch_threads(args.threads):
        for dataset in args.datasets:
            entry = payload["datasets"].setdefault(dataset, {"rows": {}})
            images, masks, splits, settings = cv_setup(dataset, args.n, args.folds, args.quick)
            entry["settings"] = {**settings, "other": "make_segmenter() defaults"}
            for label, params in CANDIDATES:
                if label in entry["rows"] or out_of_time():
                    continue
                wall, cpu = time.perf_counter(), time.process_time()
                result = select_segmenter(images, masks, search={k: [v] for k, v in params.items()}, cv=splits,
                                          budget=None, refit=False, progress=not args.quick, **settings)
                entry["rows"][label] = {**_row(params, result, list(range(args.folds))),
                                        "candidate_wall_seconds": time.perf_counter() - wall,
                                        "candidate_cpu_seconds": time.process_time() - cpu}
                write_json("standardize_default", payload, path)
            if len(entry["rows"]) == len(CANDIDATES):
                entry["verdict"] = _verdict(entry["rows"], args.folds)
            if args.score_test and "verdict" in entry:
                test_images = test_masks = None
                entry.setdefault("test", {})
                for label, params in CANDIDATES:
                    if label in entry["test"] or out_of_time():
                        continue
                    if test_images is None:
                        test_images, test_masks, _ = _load(dataset, "test", None)
                        if args.quick:
                            test_images, test_masks = test_images[:2], test_masks[:2]
                    pipe = make_segmenter(**settings).set_params(**params)
                    wall, cpu = time.perf_counter(), time.process_time()
                    pipe.fit(images, masks)
                    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
                    entry["test"][label] = {"params": params, "n_images": len(test_images),
                                            "miou": pipe.score(test_images, test_masks) * 100,
                                            "fit_seconds": fit_wall, "fit_cpu_seconds": fit_cpu, "seeds": 1,
                                            "load_average_after": machine()["load_average_1min"],
                                            "note": "fitted on the n labelled images, scored once on the test "
                                                    "split after the CV verdict"}
                    write_json("standardize_default", payload, path)
        verdicts = [payload["datasets"].get(d, {}).get("verdict") for d in ("weizmann", "ccp")]
        if all(verdicts):
            payload["adopt_standardize"] = all(v["not_worse"] for v in verdicts)
        path = write_json("standardize_default", payload, path)
    print(f"{'dataset':9s} {'candidate':22s} {'CV mIoU':>8s} {'fold std':>8s} {'test':>6s}")
    for dataset, entry in payload["datasets"].items():
        for label, row in entry["rows"].items():
            test = entry.get("test", {}).get(label, {}).get("miou")
            print(f"{dataset:9s} {label:22s} {row['cv_miou']:8.1f} {row['cv_miou_std_over_folds'] or 0:8.1f} "
                  f"{'' if test is None else f'{test:6.1f}'}")
        if "verdict" in entry:
            v = entry["verdict"]
            print(f"{dataset}: paired difference {v['mean_paired_difference']:+.2f} (SE {v['standard_error']:.2f})"
                  f" -> not worse: {v['not_worse']}")
    print(f"adopt standardize=True: {payload.get('adopt_standardize')}; wrote {path}")
    return payload


if __name__ == "__main__":
    main()
