"""
Which noise for feature extraction? (paper, Table 5)
====================================================

Compares one fixed noise shared by all steps (the paper's choice), a fresh noise per step, and
features averaged over five noise draws, each over three seeds (new noise and classifier per seed).
Writes ``output/noise_variants.png``.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import noise_study, plot_noise_variants  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)



train, test = load_horses(split="train"), load_horses(split="test")
X_train, y_train = shrink_pairs(train.images, train.masks)
X_test, y_test = shrink_pairs(test.images, test.masks)
start = time.perf_counter()
runs = noise_study(X_train, y_train, X_test, y_test, seeds=(0, 1, 2))
seconds = time.perf_counter() - start

print((runs.groupby("variant", sort=False).miou.agg(["mean", "std"]) * 100).round(1).to_string())
print(f"{len(runs)} runs in {seconds:.0f} s")

fig = plot_noise_variants(runs, title="Bundled horse DDPM: noise used to extract features")
fig.savefig(OUTPUT / "noise_variants.png", dpi=120)
plt.close(fig)
