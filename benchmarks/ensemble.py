"""Training throughput of the pixel-MLP ensemble: members batched in one module vs one by one.

Random features (d = 8448, the paper's ADM-256 width), 21 classes, 10 members, one epoch with no
early stopping, so every configuration runs a fixed number of iterations. The clock covers
skorch's training loop (``fit_loop``) only, not pixel selection or net construction.
Pixel-updates/s = training pixels x members x epochs / seconds: each member updating on one pixel
counts once, so the one-by-one and batched figures compare the same work.

Modes, all in the same run:

- ``one-by-one``: ``MLPEnsembleClassifier(batched=False)``, the reference's way, batch 64;
- ``batched``: ``batched=True`` at the same batch 64 (the same members, computed at once);
- ``batched-large``: batch 4096 with the square-root learning-rate rule
  ``lr = 1e-3 * sqrt(4096 / 64)``.

Examples
--------
    python benchmarks/ensemble.py
    python benchmarks/ensemble.py --quick
"""

import math
import sys
from contextlib import contextmanager

import numpy as np

import _common

NAME = "ensemble"


@contextmanager
def timed_fit_loops(record):
    """Sum the wall time spent in ``EnsembleNet.fit_loop`` (the training loop itself)."""
    from sklearn_ddpm.ensemble import _net

    original = _net.EnsembleNet.fit_loop
    device = record.get("device")

    def fit_loop(self, *args, **kwargs):
        with _common.stopwatch(device) as clock:
            result = original(self, *args, **kwargs)
        record["seconds"] = record.get("seconds", 0.0) + clock["seconds"]
        return result

    _net.EnsembleNet.fit_loop = fit_loop
    try:
        yield record
    finally:
        _net.EnsembleNet.fit_loop = original


def measure(mode, batch_size, n_pixels, n_features, n_classes, n_members, device, seed=0):
    from sklearn_ddpm import MLPEnsembleClassifier

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_pixels, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n_pixels)
    lr = 1e-3 * math.sqrt(batch_size / 64)
    clf = MLPEnsembleClassifier(n_estimators=n_members, batch_size=batch_size, lr=lr, max_epochs=1, patience=None,
                                batched=mode != "one-by-one", device=device, random_state=seed)
    record = {"mode": mode, "batch_size": batch_size, "lr": lr, "pixels": n_pixels, "device": device}
    with timed_fit_loops(record):
        clf.fit(X, y)
    record["iterations_per_member"] = math.ceil(n_pixels / batch_size)
    record["pixel_updates_per_s"] = n_pixels * n_members / record["seconds"]
    return record


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    if args.quick:
        n_features, n_classes, n_members = 64, 5, 3
        plan = [("one-by-one", 64, 64 * 5), ("batched", 64, 64 * 5), ("batched-large", 256, 256 * 2)]
    else:
        n_features, n_classes, n_members = 8448, 21, 10
        # enough iterations for a steady rate; more on a GPU, where each one is short
        scale = 20 if device == "cuda" else 1
        plan = [("one-by-one", 64, 64 * 100 * scale), ("batched", 64, 64 * 100 * scale),
                ("batched-large", 4096, 4096 * 3 * scale)]
    with _common.torch_threads(args.threads):
        rows = [measure(mode, bs, n, n_features, n_classes, n_members, device) for mode, bs, n in plan]
    reference = rows[0]["pixel_updates_per_s"]
    for row in rows:
        row["speedup_vs_one_by_one"] = row["pixel_updates_per_s"] / reference
    _common.print_table(rows, ["mode", "batch_size", "lr", "pixels", "iterations_per_member", "seconds",
                               "pixel_updates_per_s", "speedup_vs_one_by_one"],
                        title=f"ensemble training throughput ({device}; d={n_features}, {n_classes} classes, "
                              f"{n_members} members, 1 epoch)")
    payload = {"device": device, "quick": args.quick, "n_features": n_features, "n_classes": n_classes,
               "n_members": n_members, "rows": rows}
    return _common.write_json(NAME, payload, args.out, device)


if __name__ == "__main__":
    main(sys.argv[1:])
