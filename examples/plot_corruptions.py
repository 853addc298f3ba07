"""
Robustness to image corruptions (paper, Fig. 6)
===============================================

Trains on the 10 clean bundled horses, then scores the 10 test horses corrupted by Gaussian noise,
Gaussian blur, JPEG compression, lower contrast and higher brightness at severities 1-5 (the
ImageNet-C constants of Hendrycks & Dietterich, 2019). Writes ``output/corruptions.png``.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import corruption_study, plot_corruptions  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)



train, test = load_horses(split="train"), load_horses(split="test")
X_train, y_train = shrink_pairs(train.images, train.masks)
X_test, y_test = shrink_pairs(test.images, test.masks)
start = time.perf_counter()
table = corruption_study(X_train, y_train, X_test, y_test)
seconds = time.perf_counter() - start

print((table.pivot(index="severity", columns="corruption", values="miou") * 100).round(1).to_string())
print(f"{len(table)} scores in {seconds:.0f} s")

fig = plot_corruptions(table, title="Bundled horse DDPM: mIoU under corruptions")
fig.savefig(OUTPUT / "corruptions.png", dpi=120)
plt.close(fig)
