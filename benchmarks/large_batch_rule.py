"""The MLP ensemble's large-batch rule: candidates chosen by CV on labeled_pool, scored once on test.

Weizmann, the bundled DDPM, n labelled images (the first n of ``labeled_pool``), 10 members,
1,000 training pixels per image, as ``weizmann.py``; the features are extracted once per part
and every fit reuses them::

    python benchmarks/large_batch_rule.py [--quick] [--part cv|test|all] [--candidates NAME ...]

1. ``--part cv``: ``GroupKFold`` over the n labelled images (one group per image): for every
   fold the reference (batch 64, the package's defaults) and every candidate rule at
   ``--large-batch`` are fitted on the other folds and scored (mIoU) on the held-out images.
   The candidate with the highest mean CV mIoU is the choice. No test image is read.
2. ``--part test``: the choice (read from the CV record, ``--cv-record``) at ``--large-batch``
   against the reference at batch 64, ``--seeds`` seeds each, in the same run, on the test
   split, scored once. ``--part all`` runs both in one process.

A candidate is a learning-rate scaling of ``s = batch / 64`` ("sqrt": ``1e-3 * sqrt(s)``,
"linear": ``1e-3 * s``), optionally a linear warm-up from the reference's 1e-3 over the first
epochs (Goyal et al., 2017; skorch's ``LRScheduler`` with ``torch.optim.lr_scheduler.LinearLR``,
stepped every batch), ghost batch normalization over slices of 64 samples (Hoffer et al., 2017;
``BatchedMLPEnsemble(ghost_batch=64)``) and the epochs before a member may stop. The patience is
the package's "auto" (50 iterations at batch 64, kept in pixels).

Every candidate is now a set of classifier parameters a search could set (``clf__lr``,
``clf__min_epochs``, ``clf__module__ghost_batch``, ``clf__batch_size``, and the warm-up as
``clf__callbacks``, the classifier's extra skorch callbacks). The CV still does not go through
:func:`sklearn_ddpm.model_selection.select_segmenter` (issue 29), for what the record keeps:
for every fold and rule, the schedule the fit resolved and how it stopped (``lr_``,
``patience_``, ``min_epochs_``, the ghost batch, ``stop_epochs_``, ``n_iter_``, fit and predict
seconds), which ``--reuse-cv`` reads back instead of refitting. A search's CV table keeps scores
and mean times only (a scorer could collect the fitted details only as a side effect that relies
on the order of its calls and is lost with ``n_jobs``); and ``select_segmenter`` extracts the
features in single-image passes (other noise draws than this script's batched extraction), so
the committed CV records' fits could no longer be reused.
"""

import json
import math
import os
import time

import numpy as np

import _common

REFERENCE = "batch 64 (reference)"

#: the rules under trial at the large batch; "sqrt" is the package's "auto" rule before issue 17
CANDIDATES = {
    "sqrt": {"lr": "sqrt"},
    "linear+warmup2": {"lr": "linear", "warmup_epochs": 2},
    "sqrt+ghost64": {"lr": "sqrt", "ghost_batch": 64},
    "linear+warmup2+ghost64": {"lr": "linear", "warmup_epochs": 2, "ghost_batch": 64},
    "sqrt+ghost64+min8": {"lr": "sqrt", "ghost_batch": 64, "min_epochs": 8},
    "sqrt+ghost64+min16": {"lr": "sqrt", "ghost_batch": 64, "min_epochs": 16},
    # 4 * sqrt(2048 / 64) epochs: with the sqrt lr, the reference's lr x iterations
    "sqrt+ghost64+min23": {"lr": "sqrt", "ghost_batch": 64, "min_epochs": 23},
}


def epoch_warmup(warmup_epochs, start_factor):
    """A skorch callback: lr rises linearly from ``start_factor * lr`` to ``lr`` over the first epochs."""
    import torch
    from skorch.callbacks import LRScheduler

    class EpochWarmup(LRScheduler):
        def __init__(self, warmup_epochs=1, start_factor=1.0):
            super().__init__(policy=torch.optim.lr_scheduler.LinearLR, step_every="batch", event_name=None)
            self.warmup_epochs = warmup_epochs
            self.start_factor = start_factor

        @property
        def kwargs(self):
            return {"start_factor": self.start_factor, "total_iters": self.total_iters_}

        def on_train_begin(self, net, X=None, **kwargs):
            # the iterations of an epoch are known once the training pixels are
            self.total_iters_ = max(1, round(self.warmup_epochs * math.ceil(len(X) / net.batch_size)))
            super().on_train_begin(net, X=X, **kwargs)

    return EpochWarmup(warmup_epochs, start_factor)


def make_classifier(spec, batch_size, **kw):
    """An ``MLPEnsembleClassifier`` training under candidate ``spec`` (None: the reference, batch 64)."""
    from sklearn_ddpm import MLPEnsembleClassifier
    from sklearn_ddpm.ensemble._schedule import REFERENCE_BATCH, REFERENCE_LR

    if spec is None:
        return MLPEnsembleClassifier(batch_size=REFERENCE_BATCH, **kw)
    scale = batch_size / REFERENCE_BATCH
    lr = REFERENCE_LR * (scale if spec["lr"] == "linear" else scale**0.5)
    if spec.get("ghost_batch"):
        kw["module__ghost_batch"] = spec["ghost_batch"]
    if spec.get("warmup_epochs"):
        kw["callbacks"] = [("warmup", epoch_warmup(spec["warmup_epochs"], REFERENCE_LR / lr))]
    return MLPEnsembleClassifier(batch_size=batch_size, lr=lr, min_epochs=spec.get("min_epochs", "auto"), **kw)


def _fit_and_score(spec, batch_size, seed, kw, train_f, train_masks, eval_f, eval_masks):
    from sklearn_ddpm import miou_score

    start = time.perf_counter()
    clf = make_classifier(spec, batch_size, random_state=seed, **kw).fit(train_f, train_masks)
    fitted = time.perf_counter()
    score = 100 * miou_score(eval_masks, clf.predict(eval_f))
    return {"miou": score, "fit_seconds": fitted - start, "predict_seconds": time.perf_counter() - fitted,
            "lr": clf.lr_, "patience": clf.patience_, "min_epochs": clf.min_epochs_,
            "ghost_batch": clf.net_.module_.ghost_batch,
            "stop_epochs": clf.stop_epochs_, "n_iter": clf.n_iter_}


def _earlier_fits(args):
    """``{(seed, fold, rule): fit}`` of the ``--reuse-cv`` records, whose settings must be this run's."""
    fits = {}
    for path in args.reuse_cv or ():
        record = json.loads(open(path).read())
        for key in ("n_labeled", "folds", "max_pixels_per_image", "n_estimators", "large_batch", "model"):
            if record["settings"][key] != getattr(args, key):
                raise ValueError(f"{path} was run with {key}={record['settings'][key]!r}, not {getattr(args, key)!r}")
        for row in record["cv"]["folds"]:
            for name, fit in row["fits"].items():
                fits[row["seed"], row["fold"], name] = {**fit, "reused_from": os.path.basename(path)}
    return fits


def cross_validate(args, kw, pool_f, pool_masks, payload, save):
    """Every candidate's (and the reference's) held-out mIoU per fold, and the choice they make."""
    from sklearn.model_selection import GroupKFold

    groups = np.arange(len(pool_masks))
    names = [REFERENCE, *args.candidates]
    earlier = _earlier_fits(args)
    folds = []
    payload["cv"] = {"folds": folds, "candidates": {n: CANDIDATES[n] for n in args.candidates}}
    for seed in range(args.cv_seeds):
        for k, (train, held) in enumerate(GroupKFold(n_splits=args.folds).split(groups, groups=groups)):
            row = {"seed": seed, "fold": k, "held_out": held.tolist(), "fits": {}}
            folds.append(row)
            for name in names:
                fit = earlier.get((seed, k, name))
                if fit is None:
                    fit = _fit_and_score(CANDIDATES.get(name), args.large_batch, seed, kw, pool_f[train],
                                         [pool_masks[i] for i in train], pool_f[held], [pool_masks[i] for i in held])
                row["fits"][name] = fit
                print(f"cv seed {seed} fold {k} {name}: {fit['miou']:.1f} ({fit['fit_seconds']:.0f} s"
                      + (f", from {fit['reused_from']})" if "reused_from" in fit else ")"), flush=True)
                save()
    mean = {n: float(np.mean([f["fits"][n]["miou"] for f in folds])) for n in names}
    winner = max(args.candidates, key=mean.get)
    payload["cv"]["mean_miou"] = mean
    payload["cv"]["choice"] = {
        "rule": winner, "spec": CANDIDATES[winner], "cv_miou": mean[winner],
        "cv_gap_to_reference": mean[REFERENCE] - mean[winner],
        "how": "the candidate with the highest mean held-out mIoU over the folds",
    }
    save()
    _common.print_table([{"rule": n, "cv_miou": mean[n]} for n in names], ["rule", "cv_miou"],
                        title=f"GroupKFold({args.folds}) CV on labeled_pool[:{args.n_labeled}]; choice: {winner}")
    return winner


def score_test(args, kw, winner, pool_f, pool_masks, test_f, test_masks, payload, save):
    """The choice at the large batch against the reference, every seed, on the test split."""
    per_seed = []
    payload["test"] = {"rule": winner, "spec": CANDIDATES[winner], "per_seed": per_seed}
    for seed in range(args.seeds):
        row = {"seed": seed}
        for key, spec in (("reference", None), ("chosen", CANDIDATES[winner])):
            row[key] = _fit_and_score(spec, args.large_batch, seed, kw, pool_f, pool_masks, test_f, test_masks)
        per_seed.append(row)
        for key in ("reference", "chosen"):
            mean, std = _common.mean_sample_std([r[key]["miou"] for r in per_seed])
            payload["test"][f"{key}_miou"] = {"mean": mean, "std": std, "n_seeds": len(per_seed)}
        payload["test"]["gap"] = payload["test"]["reference_miou"]["mean"] - payload["test"]["chosen_miou"]["mean"]
        save()
        print(f"test seed {seed}: reference {row['reference']['miou']:.1f}, {winner} {row['chosen']['miou']:.1f}",
              flush=True)
    rows = [{"rule": name, "batch": batch, "test_miou": _common.format_mean_std([r[key]["miou"] for r in per_seed])}
            for key, name, batch in (("reference", REFERENCE, 64), ("chosen", winner, args.large_batch))]
    _common.print_table(rows, ["rule", "batch", "test_miou"], title=f"Weizmann test, {args.seeds} seeds")


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--part", choices=["cv", "test", "all"], default="all")
    p.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--cv-record", default=None, help="--part test: the CV record holding the choice "
                                                     "(default: the one --part cv writes)")
    p.add_argument("--model", default=None, help="backbone (default: the bundled horse DDPM)")
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--folds", type=int, default=4, help="GroupKFold splits of the labelled images")
    p.add_argument("--cv-seeds", type=int, default=1)
    p.add_argument("--reuse-cv", nargs="+", default=None,
                   help="--part cv: CV records of earlier runs with the same settings; their fits (same seed, "
                        "fold and rule) are taken from there instead of refitted (a seeded CPU fit reproduces)")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the test-split fits")
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--max-pixels-per-image", type=int, default=1000)
    p.add_argument("--n-estimators", type=int, default=10)
    p.add_argument("--large-batch", type=int, default=2048)
    args = p.parse_args(argv)
    device, note = _common.resolve_device(args.device)
    device = device or "cpu"
    size = None
    if args.quick:
        args.n_labeled, args.folds, args.seeds, args.n_test, args.n_estimators = 4, 2, 1, 2, 2
        args.max_pixels_per_image, args.large_batch, size = 200, 256, 48
    suffix = "_quick" if args.quick else f"_n{args.n_labeled}"
    name = "large_batch_rule" + ("_cv" if args.part == "cv" else "") + suffix
    cv_record = args.cv_record or _common.RESULTS_DIR / f"large_batch_rule_cv{suffix}.json"

    from sklearn_ddpm import ActivationCache, DDPMFeatureTransformer

    kw = {"n_estimators": args.n_estimators, "device": device, "max_pixels_per_image": args.max_pixels_per_image}
    payload = {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "device": device, "gpu_note": note,
               "miou_std": _common.STD_NOTE}
    payload["load_average_1min_start"] = os.getloadavg()[0]
    start = time.perf_counter()

    def save():
        payload["seconds"] = time.perf_counter() - start
        return _common.write_json(name, payload, args.out, device=device)

    with _common.torch_threads(args.threads):
        pool, pool_masks, source = _common.horse_data("labeled_pool", args.n_labeled, size)
        transformer = DDPMFeatureTransformer(args.model, memory=ActivationCache(), device=device).fit(pool)
        pool_f = transformer.transform(pool)
        payload.update({"data": {"train": source}, "backbone": repr(transformer.backbone_),
                        "blocks": transformer.blocks_, "steps": transformer.steps_})
        if args.part in ("cv", "all"):
            winner = cross_validate(args, kw, pool_f, pool_masks, payload, save)
        else:
            payload["cv"] = json.loads(open(cv_record).read())["cv"]
            payload["cv_record"] = os.path.basename(cv_record)
            winner = payload["cv"]["choice"]["rule"]
        if args.part in ("test", "all"):
            # the test images are read only now, after the choice
            test, test_masks, test_source = _common.horse_data("test", args.n_test, size)
            payload["data"]["test"] = test_source
            score_test(args, kw, winner, pool_f, pool_masks, transformer.transform(test), test_masks, payload, save)
    path = save()
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
