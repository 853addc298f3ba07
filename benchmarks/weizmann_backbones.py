"""Weizmann: segmentation mIoU of backbone snapshots against the CPU hours that trained them.

Each backbone (a model folder, a ``train-ddpm`` checkpoint file, or ``bundled``) is scored with the
package's default classifier settings (``make_segmenter``: 10 MLPs, the guided-filter refinement)
except the pixel budget (``--max-pixels-per-image``, 1,000 like the other Weizmann benchmarks; the
default uses all labelled pixels, which a 2-core CPU cannot afford for this many fits). The
features are extracted once per backbone (the first n of ``labeled_pool`` and the test split) and
reused by every fit::

    python benchmarks/weizmann_backbones.py --backbones bundled .cache/horse64/checkpoints/step-*.pt \
        [--cv] [--seeds 3] [--quick]

Two scores per backbone, kept apart:

- ``cv_miou`` (``--cv``): ``GroupKFold`` over the n labelled images (each image its own group),
  one seed, through the package's selection code path
  (:func:`sklearn_ddpm.model_selection.select_segmenter` with the one candidate, ``refit=False``;
  its activation cache computes the labelled images' features again, one image per UNet pass).
  This is the score that may choose a backbone (e.g. which one to bundle). The records before
  the port fitted the same classifier on the transformer's features in this script's own loop
  (same folds, seed and settings; on ``--quick --cv 2`` with the bundled model the two gave fold
  scores within 0.12 points of each other: 77.65/63.76 against 77.76/63.73, the single-image
  passes' features differing slightly from batched ones).
- ``test_miou``: the 100 test images, ``--seeds`` seeds (mean ± sample std). Reported, never used
  for a choice.

CPU hours come from the checkpoint's own training record: the ``cpu_seconds`` of its sessions
(process user + system time, all threads). The record is rewritten after every backbone, and a
rerun skips the backbones it already holds (``--redo`` to score them again); runs on different backbones may share one record.
"""

import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

import _common

NAME = "weizmann_backbones"


def _load(spec, tmp):
    """(model argument for the transformer, training facts) of a backbone spec."""
    if spec == "bundled":
        # The bundled model changes when it is retrained: keep what its card says it is.
        card = (_common.REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm" / "MODEL_CARD.md").read_text()
        lines = {m[1]: m[2] for m in re.finditer(r"^\| ([a-z ]+) \| (.+) \|$", card, re.M)}
        step = re.match(r"(\d+)", lines.get("steps", ""))
        return None, {"source": "bundled", "step": int(step[1]) if step else None, "cpu_hours": None,
                      "model_card": {k: lines.get(k) for k in ("preset", "steps", "training time", "exported")}}
    path = Path(spec)
    if path.is_file():  # a checkpoint: export its EMA weights, keep its training record
        from sklearn_ddpm.ddpm_training import export_checkpoint

        folder = Path(tmp) / path.stem
        info = export_checkpoint(path, folder)
        sessions = info.get("sessions", [])
        return str(folder), {
            "source": str(path),
            "step": info["step"],
            "preset": info["hparams"].get("preset"),
            "image_size": info["hparams"].get("image_size"),
            "n_params": info["n_params"],
            "autocast": sorted({s.get("autocast", "float32") for s in sessions}),
            "train_seconds": info["train_seconds"],
            "cpu_hours": None if info["cpu_seconds"] is None else info["cpu_seconds"] / 3600,
        }
    return str(path), {"source": str(path), "step": None, "cpu_hours": None}


def _cross_validate(backbone, pool, pool_masks, folds, clf_params, device):
    """Per-fold CV mIoU (x100) of the default segmenter with ``clf_params``, by ``select_segmenter``."""
    from sklearn_ddpm.model_selection import select_segmenter

    # one candidate: the search is the CV of these settings (a stage needs a grid: the pixel cap's one value)
    result = select_segmenter(pool, pool_masks, model=backbone, search={"clf__max_pixels_per_image":
                              [clf_params["max_pixels_per_image"]]}, cv=folds, budget=None, refit=False,
                              progress=False, random_state=0, device=device, n_estimators=clf_params["n_estimators"])
    return [100 * result.cv_results_[f"split{k}_test_score"][0] for k in range(result.n_splits_)]


def _score(clf_factory, pool_f, pool_masks, test_f, test_masks, seeds):
    from sklearn_ddpm import miou_score

    scores = []
    for seed in seeds:
        clf = clf_factory(seed).fit(pool_f, pool_masks)
        scores.append(100 * miou_score(test_masks, clf.predict(test_f)))
    out = {"test_miou_per_seed": scores}
    out["test_miou"], out["test_miou_std"] = _common.mean_sample_std(scores)
    return out


def main(argv=None):
    p = _common.parser(__doc__)
    p.add_argument("--backbones", nargs="+", default=["bundled"],
                   help="model folders, train-ddpm checkpoint files, or 'bundled'")
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--cv", type=int, default=0, metavar="FOLDS", help="GroupKFold splits (0: no CV)")
    p.add_argument("--max-pixels-per-image", type=int, default=1000)
    p.add_argument("--redo", action="store_true", help="score backbones the record already holds again")
    args = p.parse_args(argv)
    device, note = _common.resolve_device(args.device)
    device = device or "cpu"
    size = None
    if args.quick:
        args.n_labeled, args.n_test, args.seeds, args.max_pixels_per_image, size = 4, 2, 1, 100, 48
        args.cv = min(args.cv, 2)
    name = NAME + ("_quick" if args.quick else "")
    path = args.out or _common.RESULTS_DIR / f"{name}.json"
    payload = json.loads(path.read_text()) if path.exists() else {}
    for key in ("benchmark", "date", "machine", "gpu"):  # write_json states them afresh
        payload.pop(key, None)
    rows = payload.setdefault("backbones", {})
    payload.update({
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "backbones", "redo")},
        "classifier": "make_segmenter defaults (10 MLPs, refine='guided': radius 16, eps 1e-3) "
                      "except max_pixels_per_image",
        "features": "DDPMFeatureTransformer defaults: blocks 'auto', steps (50, 150, 250)",
        "device": device, "gpu_note": note, "miou_std": _common.STD_NOTE,
        "note": "test_miou is reported only; choices use cv_miou (GroupKFold on the labelled images)",
    })

    from sklearn_ddpm import DDPMFeatureTransformer, make_segmenter

    def clf_factory(seed):
        clf = make_segmenter(device=device, random_state=seed).named_steps["clf"]
        return clf.set_params(max_pixels_per_image=args.max_pixels_per_image,
                              n_estimators=2 if args.quick else clf.n_estimators)

    with _common.torch_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        pool, pool_masks, source = _common.horse_data("labeled_pool", args.n_labeled, size)
        test, test_masks, test_source = _common.horse_data("test", args.n_test, size)
        payload["data"] = {"train": source, "test": test_source}
        for spec in args.backbones:
            if spec in rows and not args.redo:
                print(f"{spec}: in the record, skipped")
                continue
            model, facts = _load(spec, tmp)
            transformer = DDPMFeatureTransformer(model, device=device, memory=None).fit(pool)
            start = time.perf_counter()
            pool_f, test_f = transformer.transform(pool), transformer.transform(test)
            facts["extract_seconds"] = time.perf_counter() - start
            facts["blocks"], facts["steps"] = transformer.blocks_, transformer.steps_
            start = time.perf_counter()
            if args.cv:
                clf = clf_factory(0)
                folds = _cross_validate(transformer.backbone_, pool, pool_masks, args.cv,
                                        {"max_pixels_per_image": clf.max_pixels_per_image,
                                         "n_estimators": clf.n_estimators}, device)
                facts.update(cv_fold_miou=folds, cv_miou=float(np.mean(folds)))
            facts.update(_score(clf_factory, pool_f, pool_masks, test_f, test_masks, range(args.seeds)))
            facts["score_seconds"] = time.perf_counter() - start
            facts["load_average_1min"] = round(os.getloadavg()[0], 2)
            # Another run may have added backbones to the record meanwhile: keep them.
            if path.exists():
                rows.update({k: v for k, v in json.loads(path.read_text())["backbones"].items() if k not in rows})
            rows[spec] = facts
            _common.write_json(name, payload, args.out, device=device)
            print(f"{spec}: step {facts['step']}, cpu h {facts['cpu_hours']}, cv {facts.get('cv_miou')}, "
                  f"test {facts['test_miou']:.1f}", flush=True)
    table = [{"backbone": Path(k).name, "step": v["step"],
              "cpu_hours": None if v["cpu_hours"] is None else round(v["cpu_hours"], 2),
              "cv_miou": None if v.get("cv_miou") is None else round(v["cv_miou"], 1),
              "test_miou": _common.format_mean_std(v["test_miou_per_seed"])} for k, v in rows.items()]
    _common.print_table(table, ["backbone", "step", "cpu_hours", "cv_miou", "test_miou"],
                        title=f"Weizmann n={args.n_labeled}")
    print(f"wrote {_common.write_json(name, payload, args.out, device=device)}")
    return payload


if __name__ == "__main__":
    main()
