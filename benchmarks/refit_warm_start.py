"""Does a warm-started refit keep the quality of a refit from scratch, and how much faster is it? (issue 27)

A simulated annotator labels Weizmann horses (``labeled_pool`` only) in an
:class:`~sklearn_ddpm.interactive.InteractiveSegmenter` session with the bundled DDPM: one stroke
per class on the first image, then, each round, one corrective stroke of the true class through
the largest wrongly predicted region of the session's image with the most errors (a user paints
where the prediction is wrong). After every refit it scores the mIoU of the session's images and of
held-out ``labeled_pool`` images (never the test split) against their full masks.

Variants of the refit, all on the same strokes (the annotator follows the "scratch" model's errors,
so every variant sees the same labels):

* ``scratch``: the session's refit, from a fresh initialization, the reference's stop rule;
* ``warm``: from the previous members' weights, ``--warm-epochs`` epochs, no stop rule;
* ``scratch_short``: from scratch, ``--warm-epochs`` + ``min_epochs`` epochs at most (as cheap as warm).

    python benchmarks/refit_warm_start.py --threads 1 --seeds 0 1
"""

import copy
import json
import time

import numpy as np
from scipy import ndimage

import _common
from refit_latency import strokes


def corrective_stroke(predictions, truths, rng, brush=5, length=120):
    """A stroke of the true class along a row of the largest error region, on the image with most errors."""
    errors = [(p != t) & (t != 255) for p, t in zip(predictions, truths)]
    i = int(np.argmax([e.sum() for e in errors]))
    regions, n = ndimage.label(errors[i])
    stroke = np.full(truths[i].shape, 255, np.uint8)
    if n == 0:
        return i, stroke
    largest = 1 + int(np.argmax(ndimage.sum_labels(np.ones_like(regions), regions, range(1, n + 1))))
    inside = regions == largest
    core = ndimage.binary_erosion(inside, iterations=brush // 2) if inside.sum() > 4 * brush ** 2 else inside
    core = core if core.any() else inside
    ys, xs = np.nonzero(core)
    j = rng.integers(len(ys))
    y, x = ys[j], xs[j]
    k = truths[i][y, x]
    top, bottom = max(0, y - brush // 2), min(stroke.shape[0], y + brush // 2 + 1)
    columns = np.arange(max(0, x - length // 2), min(stroke.shape[1], x + length // 2))
    band = stroke[top:bottom]
    band[:, columns] = k
    band[truths[i][top:bottom] != k] = 255  # the true class only
    return i, stroke


def miou(predictions, truths):
    from sklearn_ddpm import miou_score

    return 100 * float(miou_score(list(truths), list(predictions)))


def warm_refit(previous, template, features, masks, epochs):
    """``template`` trained from ``previous``'s member weights for ``epochs`` epochs (no stop rule)."""
    clf = copy.deepcopy(template).set_params(max_epochs=epochs, min_epochs=epochs, patience=None)
    make_net = clf._make_net

    def make_warm_net(*args, **kwargs):
        net = make_net(*args, **kwargs)
        initialize = net.initialize

        def initialize_from_previous():
            initialize()
            net.module_.load_state_dict(previous.net_.module_.state_dict())
            return net

        net.initialize = initialize_from_previous
        return net

    clf._make_net = make_warm_net
    return clf.fit(features, masks)


def stroked_session(seed, params, images, masks, held_images):
    """A session on ``images`` (features extracted) with two strokes on the first image, the held-out
    images' features, and the seed's generator (it drew the strokes; later strokes continue it)."""
    from sklearn_ddpm.interactive import InteractiveSegmenter

    rng = np.random.default_rng(seed)
    seg = InteractiveSegmenter(None, class_names=["background", "horse"], random_state=seed, **params)
    seg.add_images(images)
    seg.extract_features()
    held = seg._transformer.transform(held_images)
    for stroke in strokes(masks[0], 2, rng):
        seg.add_labels(0, stroke)
    return seg, held, rng


def corrective_round(seg, masks, rng, r):
    """Round ``r``: a corrective stroke where the session's predictions are wrong, then the labelled
    images' features and labels to refit on, and the round's row of the record."""
    from sklearn_ddpm.interactive._session import _concatenate

    predictions = [seg.predict(i) for i in range(seg.n_images)]
    i, stroke = corrective_stroke(predictions, masks, rng)
    seg.add_labels(i, stroke)
    labelled = seg.labelled_images
    features = _concatenate([seg._features_of(k) for k in labelled])
    labels = [seg.labels(k) for k in labelled]
    return features, labels, {"round": r + 1, "labelled_pixels": seg.n_labelled_pixels}


def run(seed, args, images, masks, held_images, held_masks, out_rows, checkpoint):
    from sklearn.base import clone

    seg, held, rng = stroked_session(seed, args.params, images, masks, held_images)
    seg.fit()
    previous = {"warm": seg.pipeline_[-1]}
    rows = out_rows
    for r in range(args.rounds):
        features, labels, row = corrective_round(seg, masks, rng, r)
        for variant in ("scratch", "warm", "scratch_short"):
            start = time.process_time()
            if variant == "scratch":
                seg.fit()
                clf = seg.pipeline_[-1]
            elif variant == "warm":
                clf = warm_refit(previous["warm"], seg._clf, features, labels, args.warm_epochs)
                previous["warm"] = clf
            else:
                clf = clone(seg._clf).set_params(max_epochs=args.warm_epochs + 4).fit(features, labels)
            seconds = time.process_time() - start
            session_predictions = [clf.predict(seg._features_of(k))[0] for k in range(len(images))]
            row[variant] = {
                "fit_cpu_s": seconds, "optimizer_steps": int(clf.n_iter_),
                "session_miou": miou(session_predictions, masks),
                "held_out_miou": miou(list(clf.predict(held)), held_masks),
            }
        rows.append(row)
        print(seed, row["round"], {v: round(row[v]["held_out_miou"], 1) for v in ("scratch", "warm", "scratch_short")},
              {v: round(row[v]["fit_cpu_s"], 2) for v in ("scratch", "warm", "scratch_short")}, flush=True)
        checkpoint()
    return rows


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--n-images", type=int, default=3, help="session images (default: 3)")
    p.add_argument("--n-held-out", type=int, default=4, help="held-out labeled_pool images (default: 4)")
    p.add_argument("--warm-epochs", type=int, default=2)
    args = p.parse_args(argv)
    args.params = {}
    if args.quick:
        args.seeds, args.rounds, args.n_images, args.n_held_out = [0], 2, 2, 1
        args.params = dict(steps=(50,), n_estimators=2, max_epochs=3)
    images, masks, source = _common.horse_data("labeled_pool", args.n_images + args.n_held_out,
                                               size=64 if args.quick else None)
    session = (images[:args.n_images], masks[:args.n_images], images[args.n_images:], masks[args.n_images:])
    per_seed = {}
    with _common.torch_threads(args.threads):
        for seed in args.seeds:
            per_seed[seed] = []
            run(seed, args, *session, out_rows=per_seed[seed],
                checkpoint=lambda: write(args, source, per_seed, complete=False))
    path, summary = write(args, source, per_seed, complete=True)
    _common.print_table([{"variant": v, **{k: f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"
                                           for k, (m, s) in summary[v].items()}} for v in summary],
                        ["variant", "fit_cpu_s", "session_miou", "held_out_miou"],
                        title=f"Refits over {args.rounds} rounds, seeds {args.seeds}")
    print(f"wrote {path}")
    return json.loads(path.read_text())


def write(args, source, per_seed, complete):
    """Write the record (after every round too, marked incomplete, so a long run is never lost)."""
    per_seed = {seed: rows for seed, rows in per_seed.items() if rows}
    summary = {}
    for variant in ("scratch", "warm", "scratch_short"):
        summary[variant] = {
            key: _common.mean_sample_std([np.mean([row[variant][key] for row in rows]) for rows in per_seed.values()])
            for key in ("fit_cpu_s", "session_miou", "held_out_miou")
        }
    pairs = [row for rows in per_seed.values() for row in rows]
    paired = {variant: {key: _common.mean_sample_std([row[variant][key] - row["scratch"][key] for row in pairs])
                        for key in ("session_miou", "held_out_miou", "fit_cpu_s")}
              for variant in ("warm", "scratch_short")}
    payload = {
        "question": "warm-started refits (previous members' weights, a few epochs) vs refits from scratch: "
                    "quality and CPU time per refit (issue 27)",
        "data": f"{source}: first {args.n_images} = session, rest = held out (labeled_pool only, no test images)",
        "model": None, "warm_epochs": args.warm_epochs, "rounds": args.rounds, "seeds": args.seeds,
        "summary_over_rounds": summary,
        "summary_note": "per variant: (mean, sample std over seeds) of each seed's mean over rounds",
        "paired_difference_vs_scratch": paired,
        "paired_note": "variant minus scratch on the same labels, (mean, sample std) over every (seed, round)",
        "per_seed": per_seed, "quick": args.quick, "complete": complete,
    }
    path = _common.write_json("refit_warm_start" + ("_quick" if args.quick and args.out is None else ""), payload,
                              args.out, device="cpu")
    return path, summary


if __name__ == "__main__":
    main()
