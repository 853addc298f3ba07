"""Settings chosen by ``select_segmenter`` (what ``sklearn-ddpm fit --select`` runs) vs the plain defaults.

The protocol: the labelled data are the first ``--n-labeled`` images of ``labeled_pool``; the
search (``--search``, at ``--budget``, the CLI's defaults) sees only them, with the package's
default folds (``GroupKFold``, one image per group); the chosen settings are refitted on them
(the selection's own refit is seed 0). Then, once, the ``test`` split is scored by the chosen
settings and by the plain defaults (``make_segmenter()`` with the pixel cap of ``weizmann.py``
and ``ccp.py``, ``--default-pixels``) in the same run, for ``--seeds`` MLP seeds (the diffusion
noise stays seed 0, as in ``weizmann.py``); mIoU and per-class IoU, mean ± sample std over seeds.
The noise being the same, a method's test features are the same for every seed: they are extracted
once per method (by its first fit's transformer) and each seed's classifier predicts from them
(``predict_seconds`` of the first fit includes the extraction; records before 2026-12-07 extracted
them for every fit).

``--max-minutes`` stops before the next test fit once spent; ``--resume`` continues a record
(the selection, then the test fits it lacks)::

    python benchmarks/select_settings.py --dataset weizmann --threads 1 --out benchmarks/results/select_weizmann_n20.json
    python benchmarks/select_settings.py --dataset ccp --model .cache/ccp_ddpm --threads 1
    python benchmarks/select_settings.py --quick
"""

import ast
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import _common

NAME = "select"


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["weizmann", "ccp"], default="weizmann")
    p.add_argument("--model", default=None, help="backbone (default: the bundled horse DDPM; ccp: ccp.py's default)")
    p.add_argument("--n-labeled", type=int, default=20)
    p.add_argument("--n-test", type=int, default=None, help="test images (default: weizmann 100, ccp all 130)")
    p.add_argument("--search", default="default", help="search preset of select_segmenter (default: default)")
    p.add_argument("--budget", default="20m", help="select_segmenter's budget (default: 20m, the CLI's)")
    p.add_argument("--seeds", type=int, default=3, help="MLP seeds of the test fits (default: 3)")
    p.add_argument("--default-pixels", type=lambda v: None if v.lower() == "none" else int(v), default=1000,
                   help="pixels per image of the plain defaults (weizmann.py's and ccp.py's cap; default 1000); "
                        "none: make_segmenter's own default (no per-image cap)")
    p.add_argument("--max-minutes", type=float, default=None, help="no test fit starts after this many minutes")
    p.add_argument("--resume", action="store_true", help="continue the record at --out")
    return p


def load(args):
    """``(pool, pool_masks, test, test_masks, class_names, source)``; the test split is read only after the search."""
    if args.dataset == "weizmann":
        size = 48 if args.quick else None
        pool, masks, source = _common.horse_data("labeled_pool", args.n_labeled, size)

        def test():
            images, test_masks, test_source = _common.horse_data("test", args.n_test or 100, size)
            return images, test_masks, test_source
        return pool, masks, test, ["background", "horse"], source
    import ccp

    (images, coarse, _), _, names, source = ccp.load_data(args.n_labeled, None, args.quick, with_test=False)

    def test():
        _, (t_images, t_coarse, _), _, t_source = ccp.load_data(args.n_labeled, args.n_test, args.quick)
        return t_images, t_coarse, t_source
    return images[:args.n_labeled], coarse[:args.n_labeled], test, names["coarse"], source


def main(argv=None):
    args = build_parser().parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    if args.quick:
        args.n_labeled, args.n_test, args.seeds, args.search, args.budget = 4, 2, 2, "quick", "3m"
    name = f"{NAME}_{args.dataset}" + ("_quick" if args.quick else f"_n{args.n_labeled}")
    out = args.out or _common.RESULTS_DIR / f"{name}.json"
    payload = json.loads(Path(out).read_text()) if args.resume and Path(out).is_file() else {}
    payload.update({"protocol": __doc__.split("\n\n")[1], "settings": {k: v for k, v in vars(args).items()
                                                                      if k not in ("out", "resume")},
                    "miou_std": _common.STD_NOTE})
    started = time.perf_counter()

    def save():
        return _common.write_json(name, payload, out, device=device)

    from sklearn.base import clone

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.backbone import load_backbone
    from sklearn_ddpm.model_selection import select_segmenter

    model = args.model
    if args.dataset == "ccp" and model is None:
        import ccp

        model = "random" if args.quick else str(ccp.DEFAULT_MODEL)
    with _common.torch_threads(args.threads):
        pool, pool_masks, read_test, class_names, source = load(args)
        if args.dataset == "ccp":
            import ccp

            backbone = load_backbone(ccp.load_model(model, args.quick)[0])
        else:
            backbone = load_backbone(model)
        common = {"n_classes": len(class_names), "device": device}
        extra = {"max_epochs": 2, "n_estimators": 2} if args.quick else {}
        result = None
        if "selection" not in payload:
            load_before = os.getloadavg()
            result = select_segmenter(pool, pool_masks, model=backbone, search=args.search, budget=args.budget,
                                      random_state=0, progress=True, **common, **extra)
            payload["data"] = {"labelled": source}
            payload["backbone"] = repr(backbone)
            payload["selection"] = {**result.to_dict(), "load_average_before": load_before,
                                    "load_average_after": os.getloadavg()}
            save()
            sel = payload["selection"]
            print(f"selection: {sel['seconds']['total']:.0f} s (budget {sel['budget_seconds']} s, stopped by budget: "
                  f"{sel['stopped_by_budget']}), CV {100 * sel['best_score']:.2f}: {sel['best_params']}", flush=True)
        best = payload["selection"]["best_params"]

        # The test split, scored once: the chosen settings against the plain defaults.
        test, test_masks, test_source = read_test()
        payload["data"]["test"] = test_source
        chosen = make_segmenter(backbone, **common, **extra)
        chosen.set_params(**_best_params(payload["selection"], result))
        default = make_segmenter(backbone, max_pixels_per_image=args.default_pixels, **common, **extra)
        fits = payload.setdefault("test_fits", [])
        test_features = {}  # per method: the noise is seed 0 for every seed, so the features are shared
        done = {(f["method"], f["seed"]) for f in fits}
        for seed in range(args.seeds):
            for method, pipe in (("selected", chosen), ("defaults", default)):
                if (method, seed) in done:
                    continue
                if args.max_minutes is not None and time.perf_counter() - started > 60 * args.max_minutes:
                    print("--max-minutes spent; rerun with --resume", flush=True)
                    payload["stopped_by_max_minutes"] = True
                    save()
                    return out
                start = time.perf_counter()
                if method == "selected" and seed == 0 and result is not None:
                    fitted = result.segmenter_  # the selection's own refit (seed 0), timed within the selection
                    fit_seconds = result.seconds_["refit"]
                else:
                    fitted = clone(pipe).set_params(features__random_state=0, clf__random_state=seed)
                    fitted.fit(pool, pool_masks)
                    fit_seconds = time.perf_counter() - start
                start = time.perf_counter()
                extracted = method not in test_features
                if extracted:
                    test_features[method] = fitted[:-1].transform(test)
                predictions = fitted[-1].predict(test_features[method])
                fits.append({"method": method, "seed": seed, **_scores(test_masks, predictions, class_names),
                             "fit_seconds": fit_seconds, "predict_seconds": time.perf_counter() - start,
                             "test_features_extracted": extracted, "load_average": os.getloadavg()})
                payload["summary"] = _summary(fits, class_names)
                save()
                print(f"test {method} seed {seed}: mIoU {fits[-1]['miou']:.2f} (fit {fit_seconds:.0f} s)",
                      flush=True)
    payload.pop("stopped_by_max_minutes", None)
    path = save()
    rows = [{"method": m, "test_miou": s["miou"], "seeds": s["n_seeds"],
             **{c: None if v is None else round(v, 1) for c, v in s["per_class_iou"].items()}}
            for m, s in payload["summary"].items()]
    _common.print_table(rows, ["method", "test_miou", "seeds", *class_names],
                        title=f"{args.dataset} n={args.n_labeled}: select_segmenter({args.search!r}, budget "
                              f"{args.budget}) vs defaults; CV chose {best}")
    print(f"wrote {path}")
    return path


def _best_params(selection, result):
    """The chosen pipeline parameters: the fitted result's, or (resumed) parsed back from the record."""
    if result is not None:
        return result.best_params_
    from sklearn_ddpm.postprocessing import GuidedFilter

    params = {}
    for key, value in selection["best_params"].items():
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, str) and value.startswith("GuidedFilter("):
            call = ast.parse(value, mode="eval").body  # the record's repr of the filter: literal keywords only
            value = GuidedFilter(**{k.arg: ast.literal_eval(k.value) for k in call.keywords})
        params[key] = value
    return params


def _scores(truth, predictions, class_names):
    from sklearn_ddpm import miou_score, per_class_iou

    ious = per_class_iou(truth, predictions, n_classes=len(class_names))
    return {"miou": 100 * miou_score(truth, predictions, n_classes=len(class_names)),
            "per_class_iou": {c: None if np.isnan(v) else 100 * float(v) for c, v in zip(class_names, ious)}}


def _summary(fits, class_names):
    summary = {}
    for method in dict.fromkeys(f["method"] for f in fits):
        rows = [f for f in fits if f["method"] == method]
        miou = [f["miou"] for f in rows]
        mean, std = _common.mean_sample_std(miou)
        per_class = {}
        for c in class_names:
            values = [f["per_class_iou"][c] for f in rows if f["per_class_iou"][c] is not None]
            per_class[c] = float(np.mean(values)) if values else None
        summary[method] = {"miou": _common.format_mean_std(miou, 2), "miou_mean": mean, "miou_std": std,
                           "n_seeds": len(rows), "per_class_iou": per_class,
                           "fit_seconds_mean": float(np.mean([f["fit_seconds"] for f in rows]))}
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
