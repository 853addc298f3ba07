"""
How many labelled images are needed? (paper, Table 4)
=====================================================

Trains the segmenter on 1, 2, 5 and 10 labelled horses (a different random subset per seed) and
scores it on the 10 bundled test horses; mean ± std over three seeds. Writes
``output/sample_efficiency.png``.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import plot_sample_efficiency, sample_efficiency  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)



train, test = load_horses(split="train"), load_horses(split="test")
X_train, y_train = shrink_pairs(train.images, train.masks)
X_test, y_test = shrink_pairs(test.images, test.masks)
start = time.perf_counter()
runs = sample_efficiency(X_train, y_train, X_test, y_test, n_labeled=(1, 2, 5, 10),
                         seeds=(0, 1, 2))
seconds = time.perf_counter() - start

print((runs.groupby("n_labeled").miou.agg(["mean", "std"]) * 100).round(1).to_string())
print(f"{len(runs)} runs in {seconds:.0f} s")

fig = plot_sample_efficiency(runs, title="Bundled horse DDPM: mIoU vs labelled horses")
fig.savefig(OUTPUT / "sample_efficiency.png", dpi=120)
plt.close(fig)
