"""
Which decoder block, which diffusion step? (paper, Figs. 2 and 3)
=================================================================

Trains a pixel classifier on ONE decoder block at ONE timestep for every block × step of the
bundled horse DDPM, scores each on the bundled test horses, and draws the mIoU heatmaps — all
classes, and the classes split by their mean area in the training masks into "small" (here: the
horse) and "large" (the background).

The UNet runs once per (image, step) with all blocks hooked; every cell is a slice of those
features. Writes ``output/block_step_sweep.png`` and the table (every cell's mIoU, timings, machine)
to ``output/block_step_sweep.json``::

    python examples/plot_block_step_sweep.py [--output DIR] [--record PATH] [--quick]

The full sweep (5 steps) took 26 minutes on a shared 2-core CPU; ``--quick``, which the
documentation's gallery uses, sweeps every block at 2 steps (50 and 250).
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import block_step_sweep, plot_block_step_heatmap  # noqa: E402

# _record.py sits next to this script; sphinx-gallery runs the examples without __file__ (argv[0] is the script)
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from _record import figure_arguments, write_record  # noqa: E402

args = figure_arguments("block_step_sweep", "block x step sweep of the bundled horse DDPM")

train, test = load_horses(split="train"), load_horses(split="test")
X_train, y_train = shrink_pairs(train.images, train.masks)
X_test, y_test = shrink_pairs(test.images, test.masks)
start = time.perf_counter()
table = block_step_sweep(X_train, y_train, X_test, y_test,  # model=None: the bundled DDPM
                         steps=(50, 250) if args.quick else (50, 150, 250, 500, 750), random_state=0)
seconds = time.perf_counter() - start

print((table.pivot(index="block", columns="step", values="miou") * 100).round(1).to_string())
best = table.loc[table.miou.idxmax()]
print(f"best: block {int(best.block)} at step {int(best.step)}, mIoU {100 * best.miou:.1f} "
      f"(small classes {100 * best.miou_small:.1f}, large {100 * best.miou_large:.1f})")
print(f"{len(table)} cells in {seconds:.0f} s ({table.attrs['extract_seconds']:.0f} s of feature extraction)")

fig = plot_block_step_heatmap(table, title="Bundled horse DDPM: one block at one step, 10 labelled horses")
fig.savefig(args.output / "block_step_sweep.png", dpi=120)

write_record(args.record, "plot_block_step_sweep.py", {
    "data": {"train": train.names, "test": test.names, "max_side": 256},
    "settings": {"model": "bundled horse DDPM", "steps": sorted(table.step.unique()), "random_state": 0,
                 "quick": args.quick},
    "cells": table[["block", "step", "n_features", "miou", "miou_small", "miou_large",
                    "fit_seconds"]].to_dict("records"),
    "best_cell_on_test": {"block": int(best.block), "step": int(best.step), "miou": float(best.miou),
                          "miou_small": float(best.miou_small), "miou_large": float(best.miou_large)},
    "class_areas": table.attrs["areas"], "small_classes": table.attrs["small"],
    "seconds": {"total": seconds, "feature_extraction": table.attrs["extract_seconds"]},
})
