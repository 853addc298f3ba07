"""Do larger training batches keep the quality of the session's refits, and how much time do they save? (issue 27)

A refit of :class:`~sklearn_ddpm.interactive.InteractiveSegmenter` trains the pixel MLPs from
scratch for ``max_epochs=6`` at batch 64 (the reference's). The floating-point work per epoch does
not depend on the batch, but every optimizer step also pays a fixed cost (Adam over the
1056 x 128 first layer of 10 members, skorch's per-batch calls): at batch 64 on 3,500 stroke
pixels of three 512² horses a refit took 2.4 CPU s on one thread, at batch 256 1.5 s.

The protocol of ``refit_warm_start.py`` (Weizmann ``labeled_pool`` only, never the test split):
a simulated annotator paints one stroke per class on the first session image, then, each round,
one corrective stroke of the true class through the largest wrongly predicted region (the
annotator follows the current session's model, batch 64, so every variant sees the same labels).
After each round every variant is fitted from scratch on the same labels (``batch_size`` 64, 128,
256 with the package's large-batch rule: ``lr = 1e-3 * sqrt(B / 64)``, patience kept in pixels,
the same 6 epochs at most) and scored on the session's images and on held-out ``labeled_pool``
images (mIoU of the guided-filter prediction the user sees).

Rule, fixed before the run: for each larger batch, ``d`` = its held-out mIoU minus batch 64's over
every (seed, round); it is acceptable when ``mean(d) >= -SE``, ``SE = std(d, ddof=1) / sqrt(n)``
(within one standard error of no loss). The session adopts the acceptable batch with the lowest
median refit CPU time, else keeps 64.

    python benchmarks/refit_batch.py --threads 1 --seeds 0 1
"""

import json
import time

import numpy as np

import _common
from refit_warm_start import corrective_round, miou, stroked_session

RULE = ("for each larger batch, d = held-out mIoU minus batch 64's over every (seed, round); acceptable when "
        "mean(d) >= -SE, SE = std(d, ddof=1) / sqrt(n); adopt the acceptable batch with the lowest median refit "
        "CPU s, else keep 64 (fixed before the run)")


def run(seed, args, images, masks, held_images, held_masks, out_rows, checkpoint, deadline):
    from sklearn.base import clone

    seg, held, rng = stroked_session(seed, args.params, images, masks, held_images)
    seg._prepare()
    seg._clf.set_params(batch_size=args.batches[0])
    seg.fit()
    for r in range(args.rounds):
        if time.monotonic() > deadline:
            return False
        features, labels, row = corrective_round(seg, masks, rng, r)
        for batch in args.batches:
            start = time.process_time()
            if batch == args.batches[0]:
                seg.fit()  # the session's own refit: the annotator follows it
                clf = seg.pipeline_[-1]
            else:
                clf = clone(seg._clf).set_params(batch_size=batch).fit(features, labels)
            seconds = time.process_time() - start
            session_predictions = [clf.predict(seg._features_of(k))[0] for k in range(len(images))]
            row[str(batch)] = {
                "fit_cpu_s": seconds, "optimizer_steps": int(clf.n_iter_),
                "training_pixels": int(clf.n_training_pixels_),
                "session_miou": miou(session_predictions, masks),
                "held_out_miou": miou(list(clf.predict(held)), held_masks),
            }
        out_rows.append(row)
        print(seed, row["round"], {b: round(row[str(b)]["held_out_miou"], 1) for b in args.batches},
              {b: round(row[str(b)]["fit_cpu_s"], 2) for b in args.batches}, flush=True)
        checkpoint()
    return True


def decide(per_seed, batches):
    """The rule's verdict for every larger batch, and the batch it adopts."""
    pairs = [row for rows in per_seed.values() for row in rows]
    base = str(batches[0])
    verdicts = {}
    for batch in batches[1:]:
        d = np.array([row[str(batch)]["held_out_miou"] - row[base]["held_out_miou"] for row in pairs])
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        verdicts[str(batch)] = {
            "n_pairs": len(d), "mean_difference": float(d.mean()) if len(d) else None, "se": se,
            "acceptable": bool(len(d) > 1 and d.mean() >= -se),
            "median_fit_cpu_s": float(np.median([row[str(batch)]["fit_cpu_s"] for row in pairs])),
        }
    base_cpu = float(np.median([row[base]["fit_cpu_s"] for row in pairs])) if pairs else None
    acceptable = [b for b in batches[1:] if verdicts[str(b)]["acceptable"]]
    chosen = min(acceptable, key=lambda b: verdicts[str(b)]["median_fit_cpu_s"]) if acceptable else batches[0]
    return verdicts, base_cpu, chosen


def write(args, source, per_seed, complete):
    per_seed = {seed: rows for seed, rows in per_seed.items() if rows}
    summary = {
        str(batch): {key: _common.mean_sample_std([np.mean([row[str(batch)][key] for row in rows])
                                                   for rows in per_seed.values()])
                     for key in ("fit_cpu_s", "session_miou", "held_out_miou")}
        for batch in args.batches
    }
    verdicts, base_cpu, chosen = decide(per_seed, args.batches)
    payload = {
        "question": "larger training batches for the session's refits (from scratch, 6 epochs): quality and CPU "
                    "time per refit (issue 27 item 2)",
        "data": f"{source}: first {args.n_images} = session, rest = held out (labeled_pool only, no test images)",
        "model": None, "batches": args.batches, "rounds": args.rounds, "seeds": args.seeds, "rule": RULE,
        "summary_over_rounds": summary,
        "summary_note": "per batch: (mean, sample std over seeds) of each seed's mean over rounds",
        "verdicts": verdicts, "median_fit_cpu_s_batch_64": base_cpu,
        "chosen_batch": chosen if complete else None,
        "per_seed": per_seed, "quick": args.quick, "complete": complete,
    }
    path = _common.write_json("refit_batch" + ("_quick" if args.quick and args.out is None else ""), payload,
                              args.out, device="cpu")
    return path, payload


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256],
                   help="training batches; the first is the session's (default: 64 128 256)")
    p.add_argument("--n-images", type=int, default=3, help="session images (default: 3)")
    p.add_argument("--n-held-out", type=int, default=4, help="held-out labeled_pool images (default: 4)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (record marked incomplete) after this")
    args = p.parse_args(argv)
    args.params = {}
    if args.quick:
        args.seeds, args.rounds, args.n_images, args.n_held_out = [0], 2, 2, 1
        args.params = dict(steps=(50,), n_estimators=2, max_epochs=3)
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else float("inf")
    images, masks, source = _common.horse_data("labeled_pool", args.n_images + args.n_held_out,
                                               size=64 if args.quick else None)
    session = (images[:args.n_images], masks[:args.n_images], images[args.n_images:], masks[args.n_images:])
    per_seed = {}
    complete = True
    with _common.torch_threads(args.threads):
        for seed in args.seeds:
            per_seed[seed] = []
            complete = run(seed, args, *session, out_rows=per_seed[seed],
                           checkpoint=lambda: write(args, source, per_seed, complete=False), deadline=deadline)
            if not complete:
                break
    path, payload = write(args, source, per_seed, complete=complete)
    _common.print_table([{"batch": b, **{k: f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"
                                         for k, (m, s) in payload["summary_over_rounds"][str(b)].items()}}
                         for b in args.batches],
                        ["batch", "fit_cpu_s", "session_miou", "held_out_miou"],
                        title=f"Refits over {args.rounds} rounds, seeds {args.seeds}; "
                              f"chosen: {payload['chosen_batch']}")
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
