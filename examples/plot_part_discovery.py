"""
Unsupervised part discovery with k-means (paper, Fig. 4)
========================================================

Clusters the pixel features of the bundled horse DDPM (no labels used) into five groups with one
k-means for all images, so each colour marks the same kind of part in every horse. Writes
``output/part_discovery.png``.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import discover_parts, plot_parts  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)



horses = load_horses(split="test")
images, masks = shrink_pairs(horses.images, horses.masks)
start = time.perf_counter()
maps, kmeans = discover_parts(images, n_clusters=5, steps=(50, 150), random_state=0)
seconds = time.perf_counter() - start

# How the unsupervised clusters line up with the horse/background annotation (never used above).
print("cluster  share of pixels  share that is horse")
all_maps = np.concatenate([m.ravel() for m in maps])
all_masks = np.concatenate([np.asarray(m).ravel() for m in masks])
for k in range(kmeans.n_clusters):
    inside = all_maps == k
    print(f"{k:>7}  {inside.mean():>15.2f}  {all_masks[inside].mean() if inside.any() else float('nan'):>19.2f}")
print(f"{len(maps)} images clustered in {seconds:.0f} s")

fig = plot_parts(images, maps, n_clusters=kmeans.n_clusters)
fig.savefig(OUTPUT / "part_discovery.png", dpi=120)
plt.close(fig)
