"""
How many labelled images are needed? (paper, Table 4)
=====================================================

Trains the segmenter on 1, 2, 5 and 10 labelled horses (a different random subset per seed) and
scores it on the 10 bundled test horses; mean ± std over three seeds. Writes
``output/sample_efficiency.png``; ``--quick`` (the documentation's gallery) trains on 1, 5 and 10 horses
with two seeds, on images scaled to 128 px instead of 256::

    python examples/plot_sample_efficiency.py [--output DIR] [--quick]
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import plot_sample_efficiency, sample_efficiency  # noqa: E402

# _record.py sits next to this script; sphinx-gallery runs the examples without __file__ (argv[0] is the script)
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from _record import figure_arguments  # noqa: E402

args = figure_arguments("sample_efficiency", "mIoU against the number of labelled horses", record=False)

train, test = load_horses(split="train"), load_horses(split="test")
size = 128 if args.quick else 256  # longest side; the paper scores at 256
X_train, y_train = shrink_pairs(train.images, train.masks, max_side=size)
X_test, y_test = shrink_pairs(test.images, test.masks, max_side=size)
start = time.perf_counter()
runs = sample_efficiency(X_train, y_train, X_test, y_test,
                         n_labeled=(1, 5, 10) if args.quick else (1, 2, 5, 10),
                         seeds=(0, 1) if args.quick else (0, 1, 2))
seconds = time.perf_counter() - start

print((runs.groupby("n_labeled").miou.agg(["mean", "std"]) * 100).round(1).to_string())
print(f"{len(runs)} runs in {seconds:.0f} s")

fig = plot_sample_efficiency(runs, title="Bundled horse DDPM: mIoU vs labelled horses")
fig.savefig(args.output / "sample_efficiency.png", dpi=120)
