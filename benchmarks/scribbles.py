"""Scribbles vs full masks: mIoU against the fraction of labelled pixels (issue 27, item 1).

The first 20 images of ``labeled_pool`` (Weizmann horses; CCP clothing, coarse classes) train the
package's default pipeline (``make_segmenter()``: bundled horse DDPM, its default blocks and
steps, 10 MLPs, guided filter, ``min_class_pixels`` at its default) from

- ``full``: the full masks, and
- simulated scribbles (``benchmarks/_scribbles.py``: eroded skeleton strokes of every region,
  3 px wide, thinned at random to a target fraction of the pixels: 0.5, 1, 2, 3, 5 %), 255 =
  unlabelled;

and scikit-image's trainable segmentation (``_baselines.SkimageSegmenter``: multiscale basic
features + random forest) learns from the same labels. Every method is scored once on the test
split (Weizmann: all 100 images; CCP: the first ``--ccp-n-test``, 30 by default, a CPU budget
fixed before any run: the machine was shared by other jobs at a load average of 10-14). A seed draws both the scribbles and the classifiers' randomness.

Nothing is tuned: every setting is the package's default (``make_segmenter()``'s pixel sample:
500 labelled pixels per class and image, the same for full masks and scribbles) and ``n_classes``
(the task's classes); ``--max-pixels-per-image N`` adds a per-image cap (records before 2026-12-07
used 1,000, the CPU budget of ``weizmann.py``'s records). So no choice looks at any image, and no
cross-validation is needed.

The UNet features of every image are extracted once and reused by all settings; the record is
rewritten after each setting, and a rerun with the same settings resumes where it stopped
(``--max-minutes`` stops starting new settings after that time); processes with other
``--datasets``/``--methods`` and the same settings fill the same record (its ``status`` and
``missing`` say what is not measured yet). ``--render-docs`` rewrites
``docs/scribbles.md`` from the records, without running anything::

    python benchmarks/scribbles.py --threads 1 --max-minutes 100
    python benchmarks/scribbles.py --render-docs
"""

import os
import re
import time
from pathlib import Path

import numpy as np

import _common
from _baselines import SkimageSegmenter, skimage_features
from _scribbles import labelled_fraction, simulate_scribbles

NAME = "scribbles"
FRACTIONS = (0.005, 0.01, 0.02, 0.03, 0.05)
FULL = "full"
ALL_DATASETS = ("weizmann", "ccp")
ALL_METHODS = ("ddpm", "skimage")
TARGET = {"dataset": "weizmann", "max_fraction": 0.03, "min_relative_miou": 0.95}
DOCS = _common.REPO_ROOT / "docs" / "scribbles.md"
PLOT = _common.REPO_ROOT / "docs" / "images" / "scribbles_miou.png"


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", choices=ALL_DATASETS, default=list(ALL_DATASETS))
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=list(ALL_METHODS))
    p.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS),
                   help="target fractions of labelled pixels (default: 0.005 0.01 0.02 0.03 0.05)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--n-labeled", type=int, default=20, help="first N images of labeled_pool (default: 20)")
    p.add_argument("--ccp-n-test", type=int, default=30, help="first N CCP test images scored (default: 30)")
    p.add_argument("--model", default=None, help="backbone (default: the package's, the bundled horse DDPM)")
    p.add_argument("--max-pixels-per-image", type=int, default=None,
                   help="a per-image cap on the labelled pixels sampled for the MLPs (default: none, the package's "
                        "own sample)")
    p.add_argument("--stroke-width", type=int, default=3, help="simulated stroke width in pixels (default: 3)")
    p.add_argument("--first", type=float, nargs="+", default=[],
                   help="run these fractions first (after the full masks), e.g. those a time budget must not miss; "
                        "the order is not a setting")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new setting after this many minutes (the record says it is partial)")
    p.add_argument("--render-docs", action="store_true", help="only rewrite docs/scribbles.md from the records")
    return p


# --- data -----------------------------------------------------------------------------------------

def load_dataset(name, n_labeled, n_test, quick):
    """``(pool_images, pool_masks, test_images, test_masks, class_names, description)``.

    ``quick`` halves every image's side (nearest-neighbour masks), for a smoke run.
    """
    from sklearn_ddpm.datasets import load_ccp_clothing, load_weizmann_horse

    if name == "weizmann":
        root = _common.DATA_DIR / "weizmann_horse"
        pool = load_weizmann_horse(root, "labeled_pool", n=n_labeled)
        test = load_weizmann_horse(root, "test", n=n_test)
    else:
        root = _common.DATA_DIR / "ccp_clothing"
        pool = load_ccp_clothing(root, "labeled_pool", coarse=True, n=n_labeled)
        test = load_ccp_clothing(root, "test", coarse=True, n=n_test)
    images, masks = list(pool.images), [np.asarray(m, dtype=np.uint8) for m in pool.masks]
    test_images, test_masks = list(test.images), [np.asarray(m, dtype=np.uint8) for m in test.masks]
    if quick:
        images, masks = [im[::2, ::2].copy() for im in images], [m[::2, ::2].copy() for m in masks]
        test_images, test_masks = [im[::2, ::2].copy() for im in test_images], [m[::2, ::2].copy() for m in test_masks]
    description = (f"{root.name} labeled_pool[:{len(images)}], test[:{len(test_images)}]"
                   + (" (quick: every side halved)" if quick else ""))
    return images, masks, test_images, test_masks, list(pool.class_names), description


def run_order(args):
    """The full masks, then ``--first``'s fractions, then the others."""
    first = [f for f in args.first if f in args.fractions]
    return [FULL, *first, *(f for f in args.fractions if f not in first)]


def make_labels(masks, fraction, seed, stroke_width):
    """The training labels of a setting: the full masks, or scribbles drawn with seed ``seed``."""
    if fraction == FULL:
        return masks
    return [simulate_scribbles(m, fraction, stroke_width=stroke_width, random_state=[seed, i])
            for i, m in enumerate(masks)]


def label_stats(masks, labels):
    fractions = [labelled_fraction(lab) for lab in labels]
    every_class = [set(np.unique(m).tolist()) - {255} <= set(np.unique(lab).tolist()) for m, lab in zip(masks, labels)]
    return {
        "labelled_fraction_mean": float(np.mean(fractions)),
        "labelled_fraction_min": float(np.min(fractions)),
        "labelled_fraction_max": float(np.max(fractions)),
        "labelled_pixels": int(sum(int((lab != 255).sum()) for lab in labels)),
        "images_with_every_class_labelled": int(sum(every_class)),
    }


# --- scoring ----------------------------------------------------------------------------------------

def confusion(truth, pred, n_classes):
    from sklearn_ddpm.metrics import confusion_matrix_images

    return confusion_matrix_images([truth], [pred], ignore_index=255, n_classes=n_classes)


def scores(cm):
    """mIoU (%) over the classes present in truth or prediction, per-class IoU (%, None: absent)."""
    from sklearn_ddpm.metrics import iou_from_confusion

    iou = iou_from_confusion(cm)
    return 100 * float(np.nanmean(iou)), [None if np.isnan(v) else 100 * float(v) for v in iou]


# --- the record ---------------------------------------------------------------------------------------

def key_of(row):
    return (row["dataset"], row["method"], str(row["fraction"]), row["seed"])


def _compatible(a, b):
    """Records of equal settings share rows; which datasets and methods a run does is not a setting
    (several processes can fill one record, each with its own datasets and methods)."""
    def strip(settings):
        return {k: v for k, v in (settings or {}).items() if k not in ("datasets", "methods")}

    return strip(a) == strip(b)


class Record:
    """The JSON record, rewritten (atomically, under a lock) after every setting.

    Rows of a record with the same settings are kept: a rerun resumes, and processes running other
    datasets or methods into the same file merge their rows.
    """

    def __init__(self, args, settings):
        self.path = Path(args.out) if args.out is not None else _common.RESULTS_DIR / f"{NAME}.json"
        self.payload = {"settings": settings, "code": {}, "protocol": __doc__.split("\n\n")[2:4], "data": {},
                        "scribbles": [], "rows": [], "timings": {}, "datasets_planned": list(settings["datasets"])}
        self.code, self.added_rows = None, False  # (process key, its code state): see add_row
        old = self._read()
        if old is not None:
            self._merge(old)
            print(f"resuming {self.path}: {len(self.payload['rows'])} settings done", flush=True)

    def _read(self):
        import json

        if not self.path.is_file():
            return None
        old = json.loads(self.path.read_text())
        return old if _compatible(old.get("settings"), self.payload["settings"]) else None

    def _merge(self, old):
        """Add the rows (and data, scribbles, timings) of ``old`` that this record lacks."""
        mine = {key_of(r) for r in self.payload["rows"]}
        self.payload["rows"] = [r for r in old.get("rows", []) if key_of(r) not in mine] + self.payload["rows"]
        scribble_key = lambda e: (e["dataset"], str(e["fraction"]), e["seed"])  # noqa: E731
        mine = {scribble_key(e) for e in self.payload["scribbles"]}
        self.payload["scribbles"] = ([e for e in old.get("scribbles", []) if scribble_key(e) not in mine]
                                     + self.payload["scribbles"])
        for field in ("data", "timings", "ddpm_pipeline", "code"):
            self.payload[field] = {**old.get(field, {}), **self.payload.get(field, {})}
        self.payload["datasets_planned"] = sorted(set(self.payload["datasets_planned"]) | set(_planned(old)))

    def done(self, dataset, method, fraction, seed):
        return (dataset, method, str(fraction), seed) in {key_of(r) for r in self.payload["rows"]}

    def add_row(self, row):
        # the code (and, at the end, the run time) of a process is recorded with the rows it measured: a
        # resumed run with nothing left to do must not replace the measuring run's entries
        if self.code is not None:
            self.payload["code"][self.code[0]] = self.code[1]
        self.added_rows = True
        self.payload["rows"] = [r for r in self.payload["rows"] if key_of(r) != key_of(row)] + [row]

    def add_scribbles(self, entry):
        keep = [s for s in self.payload["scribbles"]
                if (s["dataset"], str(s["fraction"]), s["seed"]) != (entry["dataset"], str(entry["fraction"]), entry["seed"])]
        self.payload["scribbles"] = keep + [entry]

    def write(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        import hashlib
        import tempfile

        # The lock lives outside the results folder; processes writing one record share its name.
        lock_name = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        with open(Path(tempfile.gettempdir()) / f"sklearn_ddpm_record_{lock_name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            old = self._read()
            if old is not None:
                self._merge(old)
            settings = self.payload["settings"]
            # what the processes writing this record set out to measure: their datasets, every method
            expected = {(d, m, str(f), s) for d in self.payload["datasets_planned"] for m in ALL_METHODS
                        for f in [FULL, *settings["fractions"]] for s in settings["seeds"]}
            missing = sorted(expected - {key_of(r) for r in self.payload["rows"]})
            self.payload["status"] = "complete" if not missing else "partial"
            self.payload["missing"] = [{"dataset": d, "method": m, "fraction": f, "seed": s} for d, m, f, s in missing]
            self.payload["miou_std"] = _common.STD_NOTE
            self.payload["summary"] = summarize(self.payload["rows"])
            self.payload["target"] = target_check(self.payload["summary"])
            tmp = self.path.with_suffix(f".json.{os.getpid()}.tmp")
            _common.write_json(NAME, self.payload, tmp)
            os.replace(tmp, self.path)
        return self.path


def _planned(record):
    """The datasets a record's processes were run for (records before ``datasets_planned``: from the
    ``code`` keys, one ``DATASETS/METHODS`` per process)."""
    if "datasets_planned" in record:
        return record["datasets_planned"]
    return {d for key in record.get("code", {}) for d in key.split("/")[0].split("+")}


def summarize(rows):
    """Mean ± sample std over seeds of each (dataset, method, fraction), and the ratio to the same
    method's full-mask mIoU."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"], str(r["fraction"])), []).append(r)
    out = []
    for (dataset, method, fraction), members in sorted(groups.items()):
        miou = [r["miou"] for r in members]
        mean, std = _common.mean_sample_std(miou)
        full = groups.get((dataset, method, FULL))
        full_mean = _common.mean_sample_std([r["miou"] for r in full])[0] if full else None
        out.append({
            "dataset": dataset, "method": method, "fraction": members[0]["fraction"],
            "labelled_fraction_mean": float(np.mean([r["labelled_fraction_mean"] for r in members])),
            "n_seeds": len(members), "seeds": sorted(r["seed"] for r in members),
            "miou_mean": mean, "miou_std": std,
            "relative_to_full_mask": None if full_mean is None else mean / full_mean,
        })
    return out


def target_check(summary):
    """The issue's target: scribbles with at most 3 % of the pixels reach 95 % of the full-mask mIoU
    (Weizmann, the package's pipeline)."""
    rows = [s for s in summary if s["dataset"] == TARGET["dataset"] and s["method"] == "ddpm"
            and s["fraction"] != FULL and s["fraction"] <= TARGET["max_fraction"]
            and s["relative_to_full_mask"] is not None]
    best = max(rows, key=lambda s: s["relative_to_full_mask"], default=None)
    return {
        **TARGET,
        "rule": "the package's pipeline on Weizmann; scribbles whose target fraction is at most max_fraction "
                "(the measured fraction, within half a stroke piece of the target, is reported next to it); "
                "mean mIoU over seeds / the full masks' mean mIoU",
        "best": None if best is None else {k: best[k] for k in ("fraction", "labelled_fraction_mean",
                                                                 "miou_mean", "relative_to_full_mask")},
        "met": None if best is None else bool(best["relative_to_full_mask"] >= TARGET["min_relative_miou"]),
    }


# --- the runs -------------------------------------------------------------------------------------------

def run_ddpm(args, record, dataset, data, n_classes, device, out_of_time):
    from sklearn.base import clone

    from sklearn_ddpm import make_segmenter

    images, masks, test_images, test_masks = data[:4]
    pending = [(s, f) for s in args.seeds for f in run_order(args) if not record.done(dataset, "ddpm", f, s)]
    if not pending:
        return
    model = args.model
    if args.quick:
        from sklearn_ddpm.backbone import tiny_unet

        model = tiny_unet()
    pipeline = make_segmenter(model, device=device)
    start = time.perf_counter()
    transformer = pipeline.named_steps["features"].fit(images)
    pool_features = transformer.transform(images)
    test_features = transformer.transform(test_images)
    record.payload["timings"][f"{dataset}/ddpm_extract_s"] = time.perf_counter() - start
    record.payload.setdefault("ddpm_pipeline", {})[dataset] = {
        "backbone": repr(transformer.backbone_), "blocks": list(transformer.blocks_), "steps": list(transformer.steps_),
        "n_features": transformer.n_features_out_, "classifier": repr(pipeline.named_steps["clf"]),
    }
    for seed, fraction in pending:
        if out_of_time():
            return
        labels = make_labels(masks, fraction, seed, args.stroke_width)
        clf = clone(pipeline.named_steps["clf"]).set_params(random_state=seed, n_classes=n_classes)
        if args.max_pixels_per_image is not None:
            clf.set_params(max_pixels_per_image=args.max_pixels_per_image)
        if args.quick:
            clf.set_params(n_estimators=2, max_epochs=2)
        t0 = time.perf_counter()
        clf.fit(pool_features, labels)
        t1 = time.perf_counter()
        cm = sum(confusion(t, p, n_classes) for t, p in zip(test_masks, clf.predict(test_features)))
        t2 = time.perf_counter()
        miou, per_class = scores(cm)
        row = {"dataset": dataset, "method": "ddpm", "fraction": fraction, "seed": seed, "miou": miou,
               "per_class_iou": per_class, **label_stats(masks, labels),
               "n_training_pixels": int(clf.n_training_pixels_), "fit_s": t1 - t0, "predict_s": t2 - t1}
        record.add_row(row)
        record.write()
        print(f"  {dataset} ddpm {fraction} seed {seed}: mIoU {miou:.1f} "
              f"({row['labelled_fraction_mean']:.2%} labelled; fit {t1 - t0:.0f} s, predict {t2 - t1:.0f} s)", flush=True)


def run_skimage(args, record, dataset, data, n_classes, out_of_time):
    images, masks, test_images, test_masks = data[:4]
    rf_pixels = 300 if args.quick else SkimageSegmenter().pixels_per_image
    pool_features = None
    for seed in args.seeds:
        fractions = [f for f in run_order(args) if not record.done(dataset, "skimage", f, seed)]
        if not fractions or out_of_time():
            continue
        if pool_features is None:
            start = time.perf_counter()
            pool_features = [skimage_features(im) for im in images]
            record.payload["timings"][f"{dataset}/skimage_pool_features_s"] = time.perf_counter() - start
        models, stats, fit_s = {}, {}, {}
        for fraction in fractions:
            labels = make_labels(masks, fraction, seed, args.stroke_width)
            t0 = time.perf_counter()
            models[fraction] = SkimageSegmenter(pixels_per_image=rf_pixels, random_state=seed).fit_features(
                pool_features, labels)
            fit_s[fraction] = time.perf_counter() - t0
            stats[fraction] = label_stats(masks, labels)
        # Each test image's features are computed once and every model of this seed predicts on them.
        cms = {f: np.zeros((n_classes, n_classes), dtype=np.int64) for f in fractions}
        t0 = time.perf_counter()
        for image, truth in zip(test_images, test_masks):
            features = skimage_features(image)
            for fraction, model in models.items():
                cms[fraction] += confusion(truth, model.predict_features(features), n_classes)
        predict_s = (time.perf_counter() - t0) / len(fractions)
        for fraction in fractions:
            miou, per_class = scores(cms[fraction])
            record.add_row({"dataset": dataset, "method": "skimage", "fraction": fraction, "seed": seed,
                            "miou": miou, "per_class_iou": per_class, **stats[fraction],
                            "rf_pixels_per_image": rf_pixels, "fit_s": fit_s[fraction],
                            "predict_s_shared_features": predict_s})
            print(f"  {dataset} skimage {fraction} seed {seed}: mIoU {miou:.1f}", flush=True)
        record.write()


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.render_docs:
        return render_docs()
    if args.quick:
        args.datasets, args.fractions, args.seeds = args.datasets[:1], [0.02, 0.05], [0, 1]
    n_test = {"weizmann": 2 if args.quick else 100, "ccp": 2 if args.quick else args.ccp_n_test}
    n_labeled = 2 if args.quick else args.n_labeled
    device, _ = _common.resolve_device(args.device)
    device = device or "cpu"
    settings = {"quick": args.quick, "datasets": args.datasets, "methods": args.methods,
                "fractions": args.fractions, "seeds": args.seeds, "n_labeled": n_labeled, "n_test": n_test,
                "model": args.model or "bundled horse DDPM (make_segmenter's default)",
                "max_pixels_per_image": args.max_pixels_per_image,
                "max_pixels_per_class": _default_classifier().max_pixels_per_class, "stroke_width": args.stroke_width,
                "scribbles": "benchmarks/_scribbles.py simulate_scribbles(mask, fraction, stroke_width, "
                             "random_state=[seed, image index])", "device": device}
    record = Record(args, settings)
    record.payload["backbone"] = backbone_name(args.model, args.quick)  # write_json hashes a local one
    # The code each process imported (processes of one record may differ): per datasets/methods.
    process = f"{'+'.join(args.datasets)}/{'+'.join(args.methods)}"
    record.code = (process, code_state())  # the code imported now, recorded with the rows this process adds
    start = time.perf_counter()

    def out_of_time():
        return args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes

    with _common.torch_threads(args.threads):
        for dataset in args.datasets:
            data = load_dataset(dataset, n_labeled, n_test[dataset], args.quick)
            images, masks, _, _, class_names, description = data
            n_classes = len(class_names)
            record.payload["data"][dataset] = {"description": description, "class_names": class_names,
                                               "n_pixels_per_image_mean": float(np.mean([m.size for m in masks]))}
            for seed in args.seeds:
                for fraction in args.fractions:
                    entry = {"dataset": dataset, "fraction": fraction, "seed": seed,
                             **label_stats(masks, make_labels(masks, fraction, seed, args.stroke_width))}
                    record.add_scribbles(entry)
            record.write()
            print(f"{dataset}: {description}", flush=True)
            if "ddpm" in args.methods:
                run_ddpm(args, record, dataset, data, n_classes, device, out_of_time)
            if "skimage" in args.methods:
                run_skimage(args, record, dataset, data, n_classes, out_of_time)
    if record.added_rows:
        record.payload["timings"][f"run_s/{process}"] = time.perf_counter() - start
    path = record.write()
    table = [{**s, "mIoU": _common.format_mean_std([r["miou"] for r in record.payload["rows"]
                                                    if key_of(r)[:3] == (s["dataset"], s["method"], str(s["fraction"]))]),
              "labelled": f"{s['labelled_fraction_mean']:.2%}"} for s in record.payload["summary"]]
    _common.print_table(table, ["dataset", "method", "fraction", "labelled", "mIoU", "relative_to_full_mask"],
                        title=f"mIoU (%) on the test split, ± sample std over seeds; target: {record.payload['target']['met']}")
    print(f"wrote {path}")
    return path


def _default_classifier():
    from sklearn_ddpm import make_segmenter

    return make_segmenter().named_steps["clf"]


def backbone_name(model, quick):
    """The backbone a run uses: ``model``, the bundled DDPM's folder, or the quick runs' tiny UNet."""
    if quick:
        return "tiny random-init UNet (sklearn_ddpm.backbone.tiny_unet)"
    if model is not None:
        return str(model)
    from sklearn_ddpm.backbone._loading import bundled_backbone_path

    return str(bundled_backbone_path())


def code_state():
    """The commit the code came from, and the files of the package and benchmark that differed from it."""
    import subprocess

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=_common.REPO_ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": git("status", "--porcelain", "--untracked-files=no", "--", "sklearn_ddpm",
                                       "benchmarks/_scribbles.py", "benchmarks/scribbles.py",
                                       "benchmarks/active_learning.py", "benchmarks/_baselines.py")}


# --- the docs ------------------------------------------------------------------------------------------

def render_docs(results=_common.RESULTS_DIR, docs=DOCS, plot=PLOT, draw=True):
    """Rewrite ``docs/scribbles.md`` (and, with ``draw``, its figure): :func:`page_text` written out."""
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(page_text(results, plot, draw))
    print(f"wrote {docs}")
    return docs


def page_text(results=_common.RESULTS_DIR, plot=PLOT, draw=True):
    """The page ``docs/scribbles.md`` from ``scribbles.json`` (and ``scribbles_ccp.json``, a CCP-only run with
    its own seeds, where it exists) and ``active_learning.json``; ``draw`` also redraws its figure.
    ``benchmarks/report.py`` renders (and checks) the page through this function."""
    import json

    results = Path(results)
    lines = ["# Learning from scribbles", "",
             "<!-- Generated by `python benchmarks/report.py` (benchmarks/scribbles.py's page_text) from the "
             "records it names; do not edit by hand. -->", ""]
    sources = [(path, json.loads(path.read_text())) for path in (results / f"{NAME}.json", results / f"{NAME}_ccp.json")
               if path.is_file()]
    if sources:
        lines += _scribble_section(sources, plot, draw)
    al_path = results / "active_learning.json"
    if al_path.is_file():
        import active_learning

        lines += active_learning.markdown(json.loads(al_path.read_text()), al_path)
    return "\n".join(lines) + "\n"


def _owners(sources):
    """Each dataset's record: the last of ``sources`` with rows of it (else the first)."""
    owners = {}
    for dataset in ALL_DATASETS:
        having = [(path, record) for path, record in sources if any(r["dataset"] == dataset for r in record["rows"])]
        owners[dataset] = having[-1] if having else sources[0]
    return owners


def _view(sources):
    """One record's worth of fields (data, rows, summary, missing, target) taking each dataset from its owner."""
    owners = _owners(sources)
    rows = [r for d, (_, rec) in owners.items() for r in rec["rows"] if r["dataset"] == d]
    summary = summarize(rows)
    return {"data": {d: rec["data"][d] for d, (_, rec) in owners.items() if d in rec.get("data", {})},
            "rows": rows, "summary": summary, "target": target_check(summary),
            "backbone_sha256": {d: rec.get("backbone_sha256") for d, (_, rec) in owners.items()},
            "ddpm_pipeline": {d: rec["ddpm_pipeline"][d] for d, (_, rec) in owners.items()
                              if d in rec.get("ddpm_pipeline", {})},
            "missing": [m for d, (_, rec) in owners.items() for m in rec.get("missing", []) if m["dataset"] == d],
            "n_seeds_planned": {d: len(rec["settings"]["seeds"]) for d, (_, rec) in owners.items()},
            "owners": {d: path for d, (path, _) in owners.items()}}


def _rel(path, start):
    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def _scribble_section(sources, plot, draw=True):
    view = _view(sources)
    settings = sources[0][1]["settings"]
    out = [
        "Masks where most pixels are unlabelled (255) train the same pipeline as full masks. How many "
        "labelled pixels does it need? `benchmarks/scribbles.py` reduces the full masks of the first "
        f"{settings['n_labeled']} `labeled_pool` images to simulated scribbles (the eroded skeleton of every "
        f"region, {settings['stroke_width']} px wide, thinned at random to a target fraction of the pixels; "
        "`benchmarks/_scribbles.py`), trains the package's default pipeline and scikit-image's trainable "
        "segmentation on the same labels, and scores the test split once. Nothing was tuned: the package's "
        + (f"defaults, with at most {settings['max_pixels_per_image']:,} labelled pixels sampled per image for the "
           "MLPs (full masks and scribbles alike; a CPU budget, as in `weizmann.py`'s records). "
           if settings.get("max_pixels_per_image") else
           f"defaults, including their pixel sample (at most {settings['max_pixels_per_class']:,} labelled pixels per "
           "class and image for the MLPs, full masks and scribbles alike). ")
        + "Scribbles denser than that cap add coverage of the image — the sample is drawn from more places — but not training pixels, "
        "and the full masks' advantage is then where their pixels lie (everywhere, outlines included), not how "
        "many the MLPs see: the table's pixels-per-image column says how many they trained on.", "",
    ]
    for path, record in sources:
        machine = record["machine"]
        datasets = [d for d, owner in view["owners"].items() if owner == path and d in view["data"]]
        if not datasets:
            continue
        # complete or not for the datasets the page takes from it (a record may hold others, partly)
        status = "partial" if any(m["dataset"] in datasets for m in view["missing"]) else "complete"
        out += [f"Record of {' and '.join(datasets)}: [`{path.name}`]({_rel(path, DOCS.parent)}) ({status}; "
                f"{record['date']}, {machine['cpu']}, {machine['cpu_cores']} cores, {machine['torch_threads']} torch "
                f"thread, load average {machine['load_average_1min']} when written).", ""]
    if view["missing"]:
        groups = {}
        for m in view["missing"]:
            groups.setdefault((m["dataset"], m["method"]), []).append(
                "full masks" if m["fraction"] == FULL else f"{100 * float(m['fraction']):g} %")
        n_settings = len(settings["fractions"]) + 1
        parts = []
        for (d, m), v in sorted(groups.items()):
            planned = n_settings * view["n_seeds_planned"][d]
            parts.append(f"{d} {'package' if m == 'ddpm' else 'scikit-image'}: "
                         + ("every setting" if len(v) == planned else f"{len(v)} of {planned} setting×seed runs"))
        out += ["Not measured (the CPU time ran out first; the records list them under `missing`): "
                + "; ".join(parts) + ".", ""]
    for dataset, info in view["data"].items():
        rows = [s for s in view["summary"] if s["dataset"] == dataset]
        if not rows:
            continue
        pipeline = view["ddpm_pipeline"].get(dataset)
        out += [f"## {dataset}: {info['description']}", ""]
        if pipeline:
            # the record holds the machine's absolute path of a bundled model: the page names it from the package
            backbone = re.sub(r"source='[^']*/(sklearn_ddpm/_data/[^']*)'", r"source='\1'", pipeline["backbone"])
            sha = view["backbone_sha256"].get(dataset)
            out += [f"The package's pipeline: backbone `{backbone}`"
                    + (f" (weights `{sha[:12]}`)" if sha else "") + f", blocks {pipeline['blocks']}, steps "
                    f"{pipeline['steps']} ({pipeline['n_features']:,} features per pixel).", ""]
        out += [
                "| labels | labelled pixels (mean over images) | MLP training pixels per image | package mIoU "
                "| of full masks | scikit-image mIoU |",
                "|---|---|---|---|---|---|"]
        by = {(s["method"], str(s["fraction"])): s for s in rows}
        fractions = [FULL] + sorted({s["fraction"] for s in rows if s["fraction"] != FULL})
        for f in fractions:
            ours, sk = by.get(("ddpm", str(f))), by.get(("skimage", str(f)))
            any_row = ours or sk
            if any_row is None:
                continue

            def cell(s):
                if s is None:
                    return "not run"
                std = "" if s["miou_std"] is None else f" ± {s['miou_std']:.1f}"
                return f"{s['miou_mean']:.1f}{std} ({s['n_seeds']} seed{'s' if s['n_seeds'] > 1 else ''})"

            label = "full masks" if f == FULL else f"scribbles, target {100 * f:g} %"
            rel = "—" if ours is None or ours["relative_to_full_mask"] is None else f"{100 * ours['relative_to_full_mask']:.1f} %"
            trained = [r["n_training_pixels"] / settings["n_labeled"] for r in view["rows"]
                       if (r["dataset"], r["method"], str(r["fraction"])) == (dataset, "ddpm", str(f))]
            trained = f"{np.mean(trained):,.0f}" if trained else "—"
            out.append(f"| {label} | {100 * any_row['labelled_fraction_mean']:.2f} % | {trained} | {cell(ours)} | {rel} "
                       f"| {cell(sk)} |")
        out.append("")
    target = view["target"]
    if target["best"] is not None:
        best = target["best"]
        verdict = "met" if target["met"] else "not met"
        out += [f"**Target** (issue 27): scribbles with at most {100 * target['max_fraction']:g} % of the pixels reach "
                f"{100 * target['min_relative_miou']:g} % of the full-mask mIoU on Weizmann — **{verdict}**: the best "
                f"such setting (target {100 * best['fraction']:g} %, {100 * best['labelled_fraction_mean']:.2f} % "
                f"labelled) scored {best['miou_mean']:.1f}, {100 * best['relative_to_full_mask']:.1f} % of the full "
                "masks' mIoU.", ""]
    out += ["± is the sample standard deviation (ddof=1) over the seeds; a seed draws both the scribbles and the "
            "classifiers' randomness.", ""]
    if (_plot(view, plot) if draw else _plottable(view)):
        names = ", ".join(f"[`{path.name}`]({_rel(path, DOCS.parent)})" for path in dict.fromkeys(view["owners"].values()))
        out += [f"![mIoU against labelled pixels]({_rel(plot, DOCS.parent)})", "",
                f"*mIoU on the test split against the mean fraction of labelled pixels, drawn from {names}; the "
                "dashed lines are the full masks.*", ""]
    return out


def _plot_datasets(record):
    return [d for d in record["data"] if any(s["dataset"] == d for s in record["summary"])]


def _plottable(record):
    import importlib.util

    return bool(_plot_datasets(record)) and importlib.util.find_spec("matplotlib") is not None


def _plot(record, path):
    if not _plottable(record):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = _plot_datasets(record)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.6), squeeze=False)
    names = {"ddpm": "package (DDPM features)", "skimage": "scikit-image"}
    for ax, dataset in zip(axes[0], datasets):
        for method, color in (("ddpm", "C0"), ("skimage", "C1")):
            rows = sorted((s for s in record["summary"] if s["dataset"] == dataset and s["method"] == method
                           and s["fraction"] != FULL), key=lambda s: s["labelled_fraction_mean"])
            if rows:
                ax.errorbar([100 * s["labelled_fraction_mean"] for s in rows], [s["miou_mean"] for s in rows],
                            yerr=[s["miou_std"] or 0 for s in rows], marker="o", color=color, label=names[method],
                            capsize=3)
            full = [s for s in record["summary"] if s["dataset"] == dataset and s["method"] == method
                    and s["fraction"] == FULL]
            if full:
                ax.axhline(full[0]["miou_mean"], color=color, ls="--", lw=1, label=f"{names[method]}, full masks")
        ax.set_xlabel("labelled pixels (%)")
        ax.set_ylabel("test mIoU (%)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    main()
