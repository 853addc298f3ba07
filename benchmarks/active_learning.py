"""Where to label next: strokes placed where ``InteractiveSegmenter.suggest`` points vs at random
(issue 27, item 3).

A labelling session (``sklearn_ddpm.interactive.InteractiveSegmenter`` with its defaults: bundled
horse DDPM, 10 MLPs, guided filter, ``make_segmenter``'s pixel sample and feature standardization) holds the first 20 images of
``labeled_pool``. It starts from one stroke of every class on every image (``_scribbles``'s
smallest scribbles: one skeleton piece per class, 24 px long, 3 px wide). Then, each round, a
simulated annotator is shown ``--k`` regions and labels the true class along the strokes of every
class inside each (``_scribbles.strokes_in_region``: the skeleton of each class's part of the
region, 3 px wide), and the ensemble refits:

- ``suggest``: the regions are ``seg.suggest(k)`` (the top-k connected regions of high
  Jensen-Shannon divergence of the members, across the 20 images);
- ``random``: the same regions' shapes (each suggestion's pixels, cropped to its bounding box)
  placed at a uniformly random position of a random image of the session (the same sizes, no
  uncertainty).

Both arms start from the same strokes and seed; after every round each arm's model is scored on
held-out images: the next 30 images of ``labeled_pool`` (``labeled_pool[20:50]``, never labelled
in the session; the test split is not used). This is a curve reported per round, not a choice.
A seed draws the first strokes, the random placements and the MLPs' randomness.

    python benchmarks/active_learning.py --threads 1 --max-minutes 60
"""

import os
import re
import time
from pathlib import Path

import numpy as np

import _common
from _scribbles import labelled_fraction, simulate_scribbles, strokes_in_region
from scribbles import backbone_name, code_state

NAME = "active_learning"
ARMS = ("suggest", "random")


def build_parser():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", choices=["weizmann", "ccp"], default=["weizmann"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--rounds", type=int, default=6, help="labelling rounds after the first fit (default: 6)")
    p.add_argument("--k", type=int, default=10, help="regions labelled per round, across the images (default: 10)")
    p.add_argument("--n-session", type=int, default=20, help="first N labeled_pool images in the session (default: 20)")
    p.add_argument("--n-heldout", type=int, default=30,
                   help="the next N labeled_pool images score each round (default: 30)")
    p.add_argument("--model", default=None, help="backbone (default: the bundled horse DDPM)")
    p.add_argument("--max-minutes", type=float, default=None, help="start no new seed after this many minutes")
    return p


def load(dataset, n_session, n_heldout, quick):
    from sklearn_ddpm.datasets import load_ccp_clothing, load_weizmann_horse

    if dataset == "weizmann":
        pool = load_weizmann_horse(_common.DATA_DIR / "weizmann_horse", "labeled_pool", n=n_session + n_heldout)
    else:
        pool = load_ccp_clothing(_common.DATA_DIR / "ccp_clothing", "labeled_pool", coarse=True,
                                 n=n_session + n_heldout)
    images, masks = list(pool.images), [np.asarray(m, np.uint8) for m in pool.masks]
    if len(images) < n_session + n_heldout:
        raise ValueError(f"{dataset} labeled_pool has {len(images)} images, {n_session} + {n_heldout} requested.")
    if quick:
        images, masks = [im[::2, ::2].copy() for im in images], [m[::2, ::2].copy() for m in masks]
    return images, masks, list(pool.class_names)


def random_regions(suggestions, shapes, rng):
    """Each suggestion's region shape placed at a random position of a random session image."""
    out = []
    for s in suggestions:
        y0, x0, y1, x1 = s.bbox
        crop = s.mask[y0:y1, x0:x1]
        image = int(rng.integers(len(shapes)))
        h, w = shapes[image]
        crop = crop[:h, :w]
        top = int(rng.integers(h - crop.shape[0] + 1))
        left = int(rng.integers(w - crop.shape[1] + 1))
        region = np.zeros((h, w), bool)
        region[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        out.append((image, region))
    return out


def score(seg, heldout_features, heldout_masks, n_classes):
    from sklearn_ddpm.metrics import confusion_matrix_images, iou_from_confusion

    pred = seg.pipeline_[-1].predict(heldout_features)
    iou = iou_from_confusion(confusion_matrix_images(heldout_masks, pred, ignore_index=255, n_classes=n_classes))
    return 100 * float(np.nanmean(iou)), [None if np.isnan(v) else 100 * float(v) for v in iou]


def run_seed(args, dataset, seed, images, masks, class_names, write):
    """One seed's curves: both arms, round 0 (the first strokes) to ``args.rounds``."""
    from sklearn_ddpm.backbone import tiny_unet
    from sklearn_ddpm.interactive import InteractiveSegmenter

    n, n_classes = args.n_session, len(class_names)
    session_images, session_masks = images[:n], masks[:n]
    heldout_images, heldout_masks = images[n:], masks[n:]
    extra = {"n_estimators": 2, "max_epochs": 2} if args.quick else {}
    model = tiny_unet() if args.quick else args.model
    sessions = {}
    for arm in ARMS:
        seg = InteractiveSegmenter(model, class_names=class_names, random_state=seed, **extra)
        seg.add_images(session_images)
        for i, m in enumerate(session_masks):
            # The smallest scribbles: one piece of stroke of every class present.
            seg.set_labels(i, simulate_scribbles(m, 1e-9, random_state=[seed, i]))
        sessions[arm] = seg
    heldout_features = None
    rng = np.random.default_rng([seed, 1])
    shapes = [m.shape for m in session_masks]
    curve = {arm: [] for arm in ARMS}
    for round_ in range(args.rounds + 1):
        suggestions = None
        for arm in ARMS:
            seg = sessions[arm]
            regions, region_pixels, new_pixels = [], 0, 0
            if round_ > 0:
                if arm == "suggest":
                    suggestions = seg.suggest(k=args.k)
                    regions = [(s.image, s.mask) for s in suggestions]
                else:
                    regions = random_regions(suggestions, shapes, rng)
                before = seg.n_labelled_pixels
                for image, region in regions:
                    seg.add_labels(image, strokes_in_region(session_masks[image], region))
                    region_pixels += int(region.sum())
                new_pixels = seg.n_labelled_pixels - before
            t0 = time.perf_counter()
            seg.fit()
            fit_s = time.perf_counter() - t0
            if heldout_features is None:
                heldout_features = seg.pipeline_[0].transform(heldout_images)
            miou, per_class = score(seg, heldout_features, heldout_masks, n_classes)
            fractions = [labelled_fraction(seg.labels(i)) for i in range(n)]
            curve[arm].append({
                "round": round_, "miou": miou, "per_class_iou": per_class,
                "labelled_pixels": int(seg.n_labelled_pixels), "labelled_fraction_mean": float(np.mean(fractions)),
                "regions": len(regions), "region_pixels": region_pixels, "new_labelled_pixels": int(new_pixels),
                "fit_s": fit_s,
            })
            print(f"  {dataset} seed {seed} round {round_} {arm:>7}: mIoU {miou:.1f}, "
                  f"{np.mean(fractions):.2%} labelled (+{new_pixels} px in {len(regions)} regions), "
                  f"fit {fit_s:.0f} s", flush=True)
        write({"dataset": dataset, "seed": seed, "complete": False, "curves": curve})
    classifier = repr(sessions[ARMS[0]].pipeline_[-1])
    return {"dataset": dataset, "seed": seed, "complete": True, "classifier": classifier, "curves": curve}


def summarize(runs):
    """Per dataset, arm and round: mean ± sample std over seeds; and suggest − random paired by seed.

    A run the time budget stopped counts for the rounds both its arms finished (``n_seeds`` says
    how many seeds each round has).
    """
    out = []
    for dataset in sorted({r["dataset"] for r in runs}):
        done = [r for r in runs if r["dataset"] == dataset]
        n_rounds = max((min(len(r["curves"][arm]) for arm in ARMS) for r in done), default=0)
        for round_ in range(n_rounds):
            row = _summary_row(dataset, round_, [r for r in done if min(len(r["curves"][a]) for a in ARMS) > round_])
            out.append(row)
    return out


def _summary_row(dataset, round_, done):
    row = {"dataset": dataset, "round": round_, "n_seeds": len(done), "seeds": [r["seed"] for r in done]}
    for arm in ARMS:
        points = [r["curves"][arm][round_] for r in done]
        row[f"{arm}_miou_mean"], row[f"{arm}_miou_std"] = _common.mean_sample_std([p["miou"] for p in points])
        row[f"{arm}_labelled_fraction_mean"] = float(np.mean([p["labelled_fraction_mean"] for p in points]))
    gain = [r["curves"]["suggest"][round_]["miou"] - r["curves"]["random"][round_]["miou"] for r in done]
    row["gain_mean"], row["gain_std"] = _common.mean_sample_std(gain)
    # The arms label different numbers of pixels per round: also compare at equal labelled pixels, the
    # random arm's curve of the same seed interpolated at the suggest arm's fraction (None outside its range).
    at_equal = [_random_at(r["curves"]["random"], r["curves"]["suggest"][round_]["labelled_fraction_mean"])
                for r in done]
    at_equal = [r["curves"]["suggest"][round_]["miou"] - v for r, v in zip(done, at_equal) if v is not None]
    row["n_seeds_at_equal_pixels"] = len(at_equal)
    row["gain_at_equal_pixels_mean"], row["gain_at_equal_pixels_std"] = (
        _common.mean_sample_std(at_equal) if at_equal else (None, None))
    return row


def _random_at(curve, fraction):
    """The random arm's mIoU at ``fraction`` labelled, linear between its rounds; None outside them."""
    points = sorted((p["labelled_fraction_mean"], p["miou"]) for p in curve)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if not xs[0] <= fraction <= xs[-1]:
        return None
    return float(np.interp(fraction, xs, ys))


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.datasets, args.seeds, args.rounds, args.k = args.datasets[:1], [0, 1], 2, 3
        args.n_session, args.n_heldout = 3, 2
    settings = {"quick": args.quick, "datasets": args.datasets, "seeds": args.seeds, "rounds": args.rounds,
                "k": args.k, "n_session": args.n_session, "n_heldout": args.n_heldout,
                "model": args.model or "bundled horse DDPM (InteractiveSegmenter's default)",
                "segmenter": "InteractiveSegmenter defaults (every run's 'classifier' is its fitted ensemble's repr: "
                             "the parameters that differ from MLPEnsembleClassifier's defaults)"
                             if not args.quick else "tiny random UNet, 2 MLPs, 2 epochs",
                "first_strokes": "simulate_scribbles(mask, 1e-9, random_state=[seed, image]): one piece of every class",
                "annotator": "strokes_in_region(true mask, region): the skeleton strokes of every class inside the "
                             "region, 3 px wide",
                "scored_on": f"labeled_pool[{args.n_session}:{args.n_session + args.n_heldout}] after every round "
                             "(held out of the session; the test split is not used)"}
    path = Path(args.out) if args.out is not None else _common.RESULTS_DIR / f"{NAME}.json"
    code = code_state()  # when the code was imported, not when the record is written
    runs = []
    if path.is_file():
        import json

        old = json.loads(path.read_text())
        if old.get("settings") == settings:
            runs = [r for r in old.get("runs", []) if r["complete"]]
            print(f"resuming {path}: {len(runs)} seeds done", flush=True)

    def write(current=None, complete=False):
        payload = {"settings": settings, "code": code, "backbone": backbone_name(args.model, args.quick), "protocol": __doc__.split("\n\n")[1:4],
                   "runs": runs + ([current] if current else []), "summary": summarize(runs + ([current] if current else [])),
                   "miou_std": _common.STD_NOTE,
                   "status": "complete" if complete else "partial: the time budget or the run stopped first"}
        tmp = path.with_suffix(".json.tmp")
        _common.write_json(NAME, payload, tmp)
        os.replace(tmp, path)
        return path

    start = time.perf_counter()
    with _common.torch_threads(args.threads):
        for dataset in args.datasets:
            images, masks, class_names = load(dataset, args.n_session, args.n_heldout, args.quick)
            for seed in args.seeds:
                if any(r["dataset"] == dataset and r["seed"] == seed for r in runs):
                    continue
                if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
                    break
                runs.append(run_seed(args, dataset, seed, images, masks, class_names, write))
                write()
    complete = all(any(r["dataset"] == d and r["seed"] == s for r in runs) for d in args.datasets for s in args.seeds)
    path = write(complete=complete)
    def cell(mean, std):
        return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"

    table = [{**r, "suggest": cell(r["suggest_miou_mean"], r["suggest_miou_std"]),
              "random": cell(r["random_miou_mean"], r["random_miou_std"]),
              "labelled": f"{r['suggest_labelled_fraction_mean']:.2%} / {r['random_labelled_fraction_mean']:.2%}"}
             for r in summarize(runs)]
    _common.print_table(table, ["dataset", "round", "labelled", "suggest", "random", "gain_mean"],
                        title="held-out mIoU (%) after each round, ± sample std over seeds")
    print(f"wrote {path}")
    return path


def _classifiers(record):
    """The fitted ensemble's repr, one line (older records have none: their settings describe it)."""
    # the seed and the task's class count differ between runs by design; the rest is the session's default
    strip = lambda text: re.sub(r"(random_state|n_classes)=\d+,\s*", "", " ".join(text.split()))  # noqa: E731
    reprs = sorted({strip(r["classifier"]) for r in record["runs"] if r.get("classifier")})
    return "; ".join(reprs) if reprs else record["settings"]["segmenter"]


def _backbone(record):
    """The record's backbone as the page names it: a bundled model by its package path, with its weights' hash."""
    name = re.sub(r"^.*/(sklearn_ddpm/_data/)", r"\1", str(record["backbone"]))
    sha = record.get("backbone_sha256")
    return f"`{name}`" + (f" (weights `{sha[:12]}`)" if sha else "")


def _at_equal_cell(row, cell):
    if row.get("gain_at_equal_pixels_mean") is None:
        return "—"
    n, total = row["n_seeds_at_equal_pixels"], row["n_seeds"]
    return cell(row["gain_at_equal_pixels_mean"], row["gain_at_equal_pixels_std"]) + (
        f" ({n} of {total} seeds in range)" if n < total else "")


def markdown(record, path):
    """The docs section of a record (``scribbles.py --render-docs`` calls it)."""
    from scribbles import DOCS, _rel

    machine, settings = record["machine"], record["settings"]
    link = _rel(path, DOCS.parent)
    out = ["## Where to label next: suggested regions vs random ones", "",
           f"A session of the first {settings['n_session']} `labeled_pool` images starts from one stroke of every "
           f"class per image; each round a simulated annotator labels the true class along strokes inside "
           f"{settings['k']} regions — those `InteractiveSegmenter.suggest` returns (top regions of the members' "
           "Jensen-Shannon divergence), or the same shapes placed at random — and the ensemble refits. Scored on "
           f"{settings['scored_on']}. The backbone is {_backbone(record)} (for CCP too: there is no CCP "
           f"backbone here), the ensemble the session's default (`{_classifiers(record)}`, with each run's seed "
           "and the task's classes), and the held-out images are not the test split, so the two tables' figures "
           "are not comparable with each other.", "",
           f"Record: [`{path.name}`]({link}) ({record['status']}; {record['date']}, {machine['cpu']}, "
           f"{machine['torch_threads']} torch thread, load average {machine['load_average_1min']} when written).", ""]
    summary = summarize(record["runs"])  # from the per-seed curves, the unfinished run's rounds included
    for dataset in sorted({r["dataset"] for r in summary}):
        rows = [r for r in summary if r["dataset"] == dataset]
        out += [f"### {dataset}", "",
                "| round | labelled pixels, suggest / random | mIoU, suggested regions | mIoU, random regions | "
                "suggest − random | suggest − random at equal labelled pixels |", "|---|---|---|---|---|---|"]

        def cell(mean, std):
            return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"

        for r in rows:
            out.append(f"| {r['round']} | {100 * r['suggest_labelled_fraction_mean']:.2f} % / "
                       f"{100 * r['random_labelled_fraction_mean']:.2f} % | {cell(r['suggest_miou_mean'], r['suggest_miou_std'])} | "
                       f"{cell(r['random_miou_mean'], r['random_miou_std'])} | {cell(r['gain_mean'], r['gain_std'])} | "
                       f"{_at_equal_cell(r, cell)} |")
        last = rows[-1]
        if last["round"] > 0:
            gain = last["gain_mean"]
            out += ["", f"After round {last['round']}, the suggested regions gave {last['suggest_miou_mean']:.1f} mIoU "
                    f"with {100 * last['suggest_labelled_fraction_mean']:.2f} % of the pixels labelled, the random ones "
                    f"{last['random_miou_mean']:.1f} with {100 * last['random_labelled_fraction_mean']:.2f} %: "
                    f"{'+' if gain >= 0 else '−'}{abs(gain):.1f} mIoU for the suggestions. The arms label the same "
                    "number of regions of the same shapes, not the same number of pixels: the strokes of a region "
                    "depend on what it covers (suggested regions follow the outlines, where each class's part of "
                    "the region is thin), so the last column compares them at equal labelled pixels: each seed's random curve, "
                    "linear between its rounds, at the suggest arm's fraction (— where that fraction is outside the "
                    "random curve's range)."]
        seeds = sorted({n for r in rows for n in r["seeds"]})
        out += ["", f"Seeds {', '.join(map(str, seeds))}; ± is the sample standard deviation (ddof=1) over the seeds "
                "of a round (none for one seed); the last column pairs the arms by seed.", ""]
        unfinished = [r["seed"] for r in record["runs"] if r["dataset"] == dataset and not r["complete"]]
        if unfinished:
            out += [f"The run of seed {unfinished[0]} had finished round "
                    f"{min(len(c) for c in next(r for r in record['runs'] if r['seed'] == unfinished[0])['curves'].values()) - 1}"
                    f" of {settings['rounds']} when the record was written (the CPU time ran out).", ""]
    return out


if __name__ == "__main__":
    main()
