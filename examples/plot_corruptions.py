"""
Robustness to image corruptions (paper, Fig. 6)
===============================================

Trains on the 10 clean bundled horses, then scores the 10 test horses corrupted by Gaussian noise,
Gaussian blur, JPEG compression, lower contrast and higher brightness at severities 1-5 (the
ImageNet-C constants of Hendrycks & Dietterich, 2019). Writes ``output/corruptions.png``;
``--quick`` (the documentation's gallery) scores severities 1, 3 and 5 only, on images
scaled to 128 px instead of 256::

    python examples/plot_corruptions.py [--output DIR] [--quick]
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import corruption_study, plot_corruptions  # noqa: E402

# _record.py sits next to this script; sphinx-gallery runs the examples without __file__ (argv[0] is the script)
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from _record import figure_arguments  # noqa: E402

args = figure_arguments("corruptions", "mIoU of the bundled horse DDPM's segmenter under image corruptions",
                        record=False)

train, test = load_horses(split="train"), load_horses(split="test")
size = 128 if args.quick else 256  # longest side; the paper scores at 256
X_train, y_train = shrink_pairs(train.images, train.masks, max_side=size)
X_test, y_test = shrink_pairs(test.images, test.masks, max_side=size)
start = time.perf_counter()
table = corruption_study(X_train, y_train, X_test, y_test,
                         severities=(1, 3, 5) if args.quick else (1, 2, 3, 4, 5))
seconds = time.perf_counter() - start

print((table.pivot(index="severity", columns="corruption", values="miou") * 100).round(1).to_string())
print(f"{len(table)} scores in {seconds:.0f} s")

fig = plot_corruptions(table, title="Bundled horse DDPM: mIoU under corruptions")
fig.savefig(args.output / "corruptions.png", dpi=120)
