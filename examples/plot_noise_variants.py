"""
Which noise for feature extraction? (paper, Table 5)
====================================================

Compares one fixed noise shared by all steps (the paper's choice), a fresh noise per step, and
features averaged over five noise draws, each over three seeds (new noise and classifier per seed).
Writes ``output/noise_variants.png``; ``--quick`` (the documentation's gallery) runs two seeds on
images scaled to 128 px instead of 256::

    python examples/plot_noise_variants.py [--output DIR] [--quick]
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import noise_study, plot_noise_variants  # noqa: E402

# _record.py sits next to this script; sphinx-gallery runs the examples without __file__ (argv[0] is the script)
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from _record import figure_arguments  # noqa: E402

args = figure_arguments("noise_variants", "noise policies of the feature extraction on the bundled horse DDPM",
                        record=False)

train, test = load_horses(split="train"), load_horses(split="test")
size = 128 if args.quick else 256  # longest side; the paper scores at 256
X_train, y_train = shrink_pairs(train.images, train.masks, max_side=size)
X_test, y_test = shrink_pairs(test.images, test.masks, max_side=size)
start = time.perf_counter()
runs = noise_study(X_train, y_train, X_test, y_test, seeds=(0, 1) if args.quick else (0, 1, 2))
seconds = time.perf_counter() - start

print((runs.groupby("variant", sort=False).miou.agg(["mean", "std"]) * 100).round(1).to_string())
print(f"{len(runs)} runs in {seconds:.0f} s")

fig = plot_noise_variants(runs, title="Bundled horse DDPM: noise used to extract features")
fig.savefig(args.output / "noise_variants.png", dpi=120)
