"""CCP coarse, n = 20, with no test photo in any choice: settings by GroupKFold CV, test scored once.

The protocol, fixed before any run (issue 16):

- Labelled data: the first ``n`` (20) photos of ``labeled_pool`` -- what a user with 20 masks has.
  No other pool photo and no ``test`` photo is looked at while choosing.
- Cross-validation: ``GroupKFold(folds)`` over those ``n`` photos, one group per photo (with
  n = 20 and 4 folds: 15 photos train, 5 validate), on the coarse masks. A candidate's score is the
  pipeline's own ``score`` (mIoU over the validation photos' pixels, classes present in truth or
  prediction), averaged over the folds; the classifier seed is 0.
- Stage 1, features: every combination of ``blocks`` x ``steps`` x ``standardize`` in ``GRID``
  (blocks 3, 6, 9 or all 12; steps 50, 150, 250 or 10, 50, 150; standardized or raw), with the
  cheap classifier budget (3 MLPs, 1,000 pixels per photo, one noise draw).
- Stage 2, budget: one change at a time from the stage-1 winner (``STAGE2``: 2,000 pixels per photo;
  4 noise draws averaged). Since issue 29 also the two rare-class levers, each alone: class-balanced
  sampling (at most 250 pixels per class and photo, then the photo's cap) and the class-weighted
  loss (``class_weight="balanced"``); records before it have neither (their rows: None).
- Stage 3: the stage-2 changes that beat the stage-1 winner, combined (only when two or more did).
- Stage 4, refinement: the winner so far with the package's guided filter on its probabilities
  (``refine="guided"``; stages 1-3 use the members' majority vote). Added after the first run
  of this protocol; ``--cv-record R --extend-cv`` runs only the stages ``R`` lacks.
- Stages 2-4 stop at ``--cv-minutes`` (a budget of time, not of scores); the record lists the
  candidates that were skipped.
- The winner is the candidate with the highest mean CV score over all stages (ties: the earlier).
- Test: ``benchmarks/ccp.py`` with the winner's settings, 3 seeds, all 130 ``test`` photos, once.
- Fixed, not chosen, to fit the CPU budget (the record's fold seconds say what a fit took on the
  shared 2-core machine): 3 MLPs per ensemble (10 cost more in proportion), at most 100 epochs, photos fed at the model's 64²,
  no class weights and no per-class pixel cap unless stage 2 chose them.

The CV runs through the package's selection code path,
:func:`sklearn_ddpm.model_selection.select_segmenter` (``refit=False``), with the stages above as
its search space (:func:`search_space`): stage 1 is its ``required_stages``, stage 2 a list of
single-change grids (each from the stage-1 winner), stages 3 and 4 callables built from the
results so far; one activation cache (``--cache-dir``) serves every candidate and fold. Since the
port (the records of 2026 before it were written by this script's own loop of
``cross_val_score`` calls, with the same folds, seed and settings): ``--cv-minutes`` is
``select_segmenter``'s budget, so a candidate of stages 2-4 does not start when it is not
expected to finish within it (the loop started candidates until the minutes had passed);
``--progress-json`` is gone (the progress bar shows the best so far); the features pass through
the UNet one photo at a time (the selection's cache keys).

The backbone is not chosen here: it is the given DDPM (``--model``). ``--cv-model`` lets the CV run
on another snapshot of the same training run (say, the one available when the search had to start);
the record says which was used for what.

The record holds every candidate's per-fold scores (the CV table), the winner, and the test rows
of ``ccp.py``.

Examples
--------
    python benchmarks/ccp_cv_protocol.py --model .cache/ccp_ddpm --threads 1
    python benchmarks/ccp_cv_protocol.py --quick
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common
import ccp

NAME = "ccp_cv_protocol"
# The record's "protocol" field: the docstring from "The protocol, fixed before any run" up to the
# paragraph on the backbone (the heading alone was stored before, issue 30).
PROTOCOL = __doc__[__doc__.index("The protocol, fixed"):__doc__.index("The CV runs through")].strip()
ALL_BLOCKS = tuple(range(12))
GRID = {"blocks": [(3, 6, 9), ALL_BLOCKS], "steps": [(50, 150, 250), (10, 50, 150)], "standardize": [True, False]}
BASE_BUDGET = {"n_estimators": 3, "max_pixels_per_image": 1000, "n_noise_samples": 1}
STAGE2 = [{"max_pixels_per_image": 2000}, {"n_noise_samples": 4}, {"max_pixels_per_class": 250},
          {"class_weight": "balanced"}]
QUICK_GRID = {"blocks": [(2,), (2, 4)], "steps": [(50,)], "standardize": [True, False]}
QUICK_STAGE2 = [{"max_pixels_per_image": 400}, {"n_noise_samples": 2}, {"max_pixels_per_class": 100},
                {"class_weight": "balanced"}]
REFINE_STAGE = [{"refine": "guided"}]
#: Not in the protocol's first records (None there): the rare-class levers of stage 2.
CLASS_BALANCE = {"max_pixels_per_class": None, "class_weight": None}
SETTINGS = ("blocks", "steps", "standardize", *BASE_BUDGET, "refine", *CLASS_BALANCE)
MLP_BATCH = 256  # lr = 1e-3 * sqrt(batch / 64), as in ccp.py


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ccp.DEFAULT_MODEL), help="DDPM folder scored on the test photos")
    p.add_argument("--cv-model", default=None, help="DDPM folder the CV runs on (default: --model)")
    p.add_argument("--n-labeled", type=int, default=20, help="labelled photos: the first N of labeled_pool (20)")
    p.add_argument("--folds", type=int, default=4, help="GroupKFold splits over the N photos (default: 4)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="test seeds (default: 0 1 2)")
    p.add_argument("--max-epochs", type=int, default=100, help="MLP epochs at most (default: 100)")
    p.add_argument("--cache-dir", default=None,
                   help="activation cache directory (default: a fresh temporary one)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="folds fitted in parallel processes (joblib; default: one process). Set OMP_NUM_THREADS "
                        "for the workers' torch threads")
    p.add_argument("--cv-minutes", type=float, default=None,
                   help="select_segmenter's budget for stages 2-4: no candidate starts that is not expected to "
                        "end within this many minutes of CV (default: no limit)")
    p.add_argument("--cv-record", type=Path, default=None,
                   help="take the CV table and choice from this record of a --skip-test run; score the test only")
    p.add_argument("--test-jobs", type=int, default=1,
                   help="score the test seeds in this many processes (each computes the photos' features)")
    p.add_argument("--extend-cv", action="store_true",
                   help="with --cv-record: run the CV stages the record lacks (e.g. 4-refine), then choose again")
    p.add_argument("--skip-test", action="store_true", help="run the CV only (no test photo is read)")
    return p


#: The record's settings and the pipeline parameters they set (n_estimators is fixed, not searched).
PARAMS = {"blocks": "features__blocks", "steps": "features__steps", "standardize": "clf__standardize",
          "max_pixels_per_image": "clf__max_pixels_per_image", "n_noise_samples": "features__n_noise_samples",
          "refine": "clf__refine", "max_pixels_per_class": "clf__max_pixels_per_class",
          "class_weight": "clf__class_weight"}
STAGES = ("1-features", "2-budget", "3-combined", "4-refine")


def to_params(settings):
    """Pipeline parameters of a record's settings (``refine="guided"``: the package's guided filter)."""
    from sklearn_ddpm.postprocessing import GuidedFilter

    params = {PARAMS[k]: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in PARAMS}
    if params.get("clf__refine") == "guided":
        params["clf__refine"] = GuidedFilter()
    return params


def to_settings(params):
    """A record's settings of pipeline parameters (the inverse of :func:`to_params`)."""
    settings = {k: params[name] for k, name in PARAMS.items()}
    settings["refine"] = None if settings["refine"] is None else "guided"
    return {"n_estimators": BASE_BUDGET["n_estimators"], **settings}


def settings(row):
    return {k: row.get(k) for k in SETTINGS}  # rows of the first run have no "refine": None


def search_space(quick, table=(), done=()):
    """``(names, space)``: the stages of the module docstring as ``select_segmenter``'s search space.

    ``table`` and ``done``: the rows and the stages (run or skipped) of an earlier run; only the
    stages it lacks are in the space, which then starts from its best candidate. Stages 3 and 4
    are callables: their candidates depend on the scores of the earlier ones, here and in ``table``.
    """
    grid, stage2 = (QUICK_GRID, QUICK_STAGE2) if quick else (GRID, STAGE2)
    base = {"max_pixels_per_image": BASE_BUDGET["max_pixels_per_image"],
            "n_noise_samples": BASE_BUDGET["n_noise_samples"], "refine": None, **CLASS_BALANCE}
    start = to_params(settings(max(table, key=lambda r: r["cv_miou"])) if table else base)

    def rows(history):
        """The earlier run's rows and this run's so far, as ``(stage, settings, cv_miou)``."""
        here = [(names[k], to_settings({**start, **p}), score)
                for k, p, score in zip(history["stage"], history["params"], history["mean_test_score"])]
        return [(r["stage"], settings(r), r["cv_miou"] / 100) for r in table] + here

    def combined(history):
        # stage 3: the stage-2 changes that beat the stage-1 winner, together (only when two or more did)
        so_far = rows(history)
        best1 = max((r for r in so_far if r[0] == "1-features"), key=lambda r: r[2])
        gains = [change for change in stage2 for stage, row, score in so_far
                 if stage == "2-budget" and row == {**best1[1], **change} and score > best1[2]]
        if len(gains) < 2:
            return []
        return {k: [v] for k, v in to_params({**best1[1], **{k: v for c in gains for k, v in c.items()}}).items()}

    def refined(history):
        # stage 4: the guided filter on the best candidate of every stage so far
        best = max(rows(history), key=lambda r: r[2])  # max keeps the first of equal scores
        return {k: [v] for k, v in to_params({**best[1], **REFINE_STAGE[0]}).items()}

    stages = {
        "1-features": [{PARAMS["blocks"]: [blocks], PARAMS["steps"]: [steps], PARAMS["standardize"]: [standardize]}
                       for blocks in grid["blocks"] for steps in grid["steps"] for standardize in grid["standardize"]],
        "2-budget": [{k: [v] for k, v in to_params(change).items()} for change in stage2],
        "3-combined": combined,
        "4-refine": refined,
    }
    # stage 3 belongs to stage 2: a record whose stage 2 ran (or was skipped) has had its chance
    names = [n for n in STAGES if n not in done and not (n == "3-combined" and "2-budget" in done)]
    return names, {"start": start, "stages": [stages[n] for n in names],
                   "required_stages": int("1-features" in names)}


def search(backbone, images, masks, args, n_classes, memory, quick, table=None, skipped=None):
    """The staged CV of the module docstring, by ``select_segmenter``; the table, the winner, the skipped.

    Given the ``table`` of an earlier run, only the stages it lacks are run, from its best candidate.
    """
    from sklearn_ddpm.model_selection import select_segmenter

    table, skipped = list(table or []), list(skipped or [])
    names, space = search_space(quick, table, {r["stage"] for r in table} | {r["stage"] for r in skipped})
    if not names:
        return table, settings(max(table, key=lambda r: r["cv_miou"])), skipped
    # 0 minutes: stage 1 only (select_segmenter takes a positive budget)
    budget = None if args.cv_minutes is None else max(60 * args.cv_minutes, 1e-3)
    result = select_segmenter(
        images, masks, model=backbone, search=space, budget=budget, cv=args.folds, random_state=0,
        n_jobs=args.n_jobs, progress=not quick, refit=False, memory=memory, device=args.device, n_classes=n_classes,
        n_estimators=BASE_BUDGET["n_estimators"], clf__batch_size=MLP_BATCH,
        clf__lr=1e-3 * (MLP_BATCH / 64) ** 0.5, clf__max_epochs=args.max_epochs)
    cv = result.cv_results_
    for k, params in enumerate(cv["params"]):
        folds = [100 * cv[f"split{j}_test_score"][k] for j in range(result.n_splits_)]
        table.append({"stage": names[cv["stage"][k]], **to_settings({**space["start"], **params}), "fold_miou": folds,
                      "cv_miou": float(np.mean(folds)), "cv_miou_std_over_folds": float(np.std(folds, ddof=1)),
                      "seconds": cv["seconds"][k]})
    skipped += [{"stage": names[s["stage"]], **to_settings({**space["start"], **s["params"]})} for s in result.skipped_]
    winner = max(table, key=lambda r: r["cv_miou"])
    return table, settings(winner), skipped


def describe(c):
    return (f"blocks {'all' if tuple(c['blocks']) == ALL_BLOCKS else c['blocks']}, steps {c['steps']}, "
            f"std {c['standardize']}, {c['n_estimators']} MLPs, {c['max_pixels_per_image']} px, "
            f"{c['n_noise_samples']} noise, refine {c.get('refine')}, "
            f"{c.get('max_pixels_per_class') or 'no'} px per class, class weight {c.get('class_weight')}")


def test_argv(args, chosen, model, out):
    """``ccp.py`` arguments that score the chosen settings on the test photos."""
    argv = ["--model", str(model), "--blocks", *map(str, chosen["blocks"]), "--steps", *map(str, chosen["steps"]),
            "--n-noise-samples", str(chosen["n_noise_samples"]), "--n-estimators", str(chosen["n_estimators"]),
            "--max-pixels-per-image", str(chosen["max_pixels_per_image"]), "--mlp-batch-size", str(MLP_BATCH),
            "--max-epochs", str(args.max_epochs), "--n-labeled", str(args.n_labeled),
            "--seeds", *map(str, args.seeds), "--tasks", "coarse", "--methods", "ddpm", "--out", str(out)]
    argv += ["--standardize"] if chosen["standardize"] else []
    argv += ["--refine", chosen.get("refine") or "none"]
    argv += ["--class-weight", chosen.get("class_weight") or "none"]
    if chosen.get("max_pixels_per_class") is not None:
        argv += ["--max-pixels-per-class", str(chosen["max_pixels_per_class"])]
    argv += ["--threads", str(args.threads)] if args.threads is not None else []
    argv += ["--device", args.device] if args.device is not None else []
    return argv + (["--quick"] if args.quick else [])


def score_test(args, chosen, tmp):
    """The one test scoring: ``ccp.py`` with the chosen settings, its seeds in ``--test-jobs`` processes."""
    from joblib import Parallel, delayed

    jobs = min(args.test_jobs, len(args.seeds))
    groups = [args.seeds[k::jobs] for k in range(jobs)]
    outs = [Path(tmp) / f"test_{k}.json" for k in range(jobs)]
    argvs = [test_argv(args, {**chosen}, args.model, out) for out in outs]
    for argv, seeds in zip(argvs, groups):
        at = argv.index("--seeds")
        argv[at + 1:at + 1 + len(args.seeds)] = map(str, seeds)
    paths = Parallel(n_jobs=jobs)(delayed(_run_ccp)(argv) for argv in argvs)
    records = [json.loads(Path(path).read_text()) for path in paths]
    return merge_seed_records(records)


def _run_ccp(argv):
    import ccp as ccp_module  # in a worker process: the sibling script, importable as in the parent

    return str(ccp_module.main(argv))


def merge_seed_records(records):
    """One ``ccp.py`` record from runs that differ only in their seeds (rows matched by task and n)."""
    import warnings

    merged = {**records[0], "settings": {**records[0]["settings"],
                                         "seeds": [s for r in records for s in r["settings"]["seeds"]]}}
    merged["timings"] = [r["timings"] for r in records]
    rows = []
    for row in records[0]["rows"]:
        same = [next(o for o in r["rows"] if (o["task"], o["n_labeled"]) == (row["task"], row["n_labeled"]))
                for r in records]
        miou = [v for o in same for v in o["miou_per_seed"]]
        acc = [v for o in same for v in o["pixel_accuracy_per_seed"]]
        weights = [len(o["miou_per_seed"]) for o in same]
        with warnings.catch_warnings():  # a class absent everywhere stays None
            warnings.simplefilter("ignore", RuntimeWarning)
            per_class = {name: np.nanmean([np.nan if o["per_class_iou"][name] is None else o["per_class_iou"][name]
                                           for o, w in zip(same, weights) for _ in range(w)])
                         for name in row["per_class_iou"]}
        rows.append({**row, "miou_mean": float(np.mean(miou)), "miou_std": _common.mean_sample_std(miou)[1],
                     "pixel_accuracy_mean": float(np.mean(acc)),
                     "pixel_accuracy_std": _common.mean_sample_std(acc)[1],
                     "miou_per_seed": miou, "pixel_accuracy_per_seed": acc,
                     "per_class_iou": {k: (None if np.isnan(v) else float(v)) for k, v in per_class.items()},
                     "miou": _common.format_mean_std(miou), "pixel_acc": _common.format_mean_std(acc)})
    merged["rows"] = rows
    return merged


def training_record(model):
    """``train_info.json`` of a train-ddpm folder (step, seconds, sessions), or None."""
    path = Path(str(model)) / "train_info.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return {k: info.get(k) for k in ("step", "train_seconds", "n_images", "sessions", "hparams", "torch")}


def main(argv=None):
    args = build_parser().parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    args.device = device
    if args.quick:
        args.n_labeled, args.folds, args.seeds, args.max_epochs = 4, 2, [0, 1], 2
        if args.model == str(ccp.DEFAULT_MODEL):
            args.model = "random"
    cv_model = args.cv_model or args.model
    from sklearn_ddpm.backbone import load_backbone

    load_before = os.getloadavg()
    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="ccp-cv-cache-") as tmp:
        cv = {}
        if args.cv_record is not None:
            cv = {k: v for k, v in json.loads(args.cv_record.read_text()).items()
                  if k in ("data", "folds", "cv_model", "cv_model_training", "cv_table", "cv_skipped", "chosen",
                           "cv_seconds", "cv_load_average")}
            cv["chosen"] = {k: cv["chosen"].get(k) for k in SETTINGS}
            cv_model = cv["cv_model"] if args.cv_model is None else cv_model
        if args.cv_record is None or args.extend_cv:
            start = time.perf_counter()
            pool, _, class_names, data = ccp.load_data(args.n_labeled, None, args.quick, with_test=False)
            images, masks = pool[0][:args.n_labeled], pool[1][:args.n_labeled]
            # Clones share one Backbone, so the UNet loads once; the cache key includes the model.
            backbone = load_backbone(ccp.load_model(cv_model, args.quick)[0])
            table, chosen, skipped = search(backbone, images, masks, args, len(class_names["coarse"]),
                                            args.cache_dir or tmp, args.quick, cv.get("cv_table"), cv.get("cv_skipped"))
            seconds = time.perf_counter() - start
            if cv:  # an extended record keeps the first run's time and load next to this one's
                seconds = [*np.atleast_1d(cv["cv_seconds"]).tolist(), seconds]
            cv = {"data": f"coarse masks of {data}", "folds": args.folds, "cv_model": str(cv_model),
                  "cv_model_training": training_record(cv_model), "cv_table": table, "cv_skipped": skipped,
                  "chosen": chosen, "cv_seconds": seconds,
                  "cv_load_average": [*cv.get("cv_load_average", []), load_before, os.getloadavg()]}
        chosen, table = cv["chosen"], cv["cv_table"]
        print(f"chosen by CV: {describe(chosen)}", flush=True)
        test = None
        if not args.skip_test:
            test = score_test(args, chosen, tmp)
    payload = {
        "protocol": PROTOCOL, **cv,
        "test_model": None if test is None else str(args.model),
        "test_model_training": None if test is None else training_record(args.model),
        "load_average_after": os.getloadavg(),
        "test": None if test is None else {k: test[k] for k in ("data", "settings", "n_test_images", "timings", "std",
                                                                  "rows")},
    }
    path = _common.write_json(NAME, payload, args.out, args.device)
    _common.print_table([{**r, "blocks": describe(r)} for r in table], ["stage", "blocks", "cv_miou", "seconds"],
                        title=f"GroupKFold({cv['folds']}) CV ({cv['data']}; mIoU %)")
    if test is not None:
        row = test["rows"][0]
        print(f"test ({test['n_test_images']} photos, {len(args.seeds)} seeds): mIoU {row['miou']}")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
