"""
Unsupervised part discovery with k-means (paper, Fig. 4)
========================================================

Clusters the pixel features of the bundled horse DDPM (no labels used) into five groups with one
k-means for all images, so each colour marks the same kind of part in every horse. Writes
``output/part_discovery.png`` and each cluster's share of pixels and of horse pixels (the masks are
used only for this check, never by the clustering) to ``output/part_discovery.json``::

    python examples/plot_part_discovery.py [--output DIR] [--record PATH]
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from sklearn_ddpm.datasets import load_horses, shrink_pairs  # noqa: E402
from sklearn_ddpm.studies import discover_parts, plot_parts  # noqa: E402

# _record.py sits next to this script; sphinx-gallery runs the examples without __file__ (argv[0] is the script)
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from _record import figure_arguments, write_record  # noqa: E402

args = figure_arguments("part_discovery", "k-means parts of the bundled horse DDPM's features")

horses = load_horses(split="test")
images, masks = shrink_pairs(horses.images, horses.masks)
start = time.perf_counter()
maps, kmeans = discover_parts(images, n_clusters=5, steps=(50, 150), random_state=0)
seconds = time.perf_counter() - start

# How the unsupervised clusters line up with the horse/background annotation (never used above).
print("cluster  share of pixels  share that is horse")
all_maps = np.concatenate([m.ravel() for m in maps])
all_masks = np.concatenate([np.asarray(m).ravel() for m in masks])
clusters = []
for k in range(kmeans.n_clusters):
    inside = all_maps == k
    horse = float(all_masks[inside].mean()) if inside.any() else float("nan")
    clusters.append({"cluster": k, "share_of_pixels": float(inside.mean()), "share_that_is_horse": horse})
    print(f"{k:>7}  {inside.mean():>15.2f}  {horse:>19.2f}")
print(f"{len(maps)} images clustered in {seconds:.0f} s")

fig = plot_parts(images, maps, n_clusters=kmeans.n_clusters)
fig.savefig(args.output / "part_discovery.png", dpi=120)

write_record(args.record, "plot_part_discovery.py", {
    "data": {"images": horses.names, "max_side": 256},
    "settings": {"model": "bundled horse DDPM", "blocks": "auto", "steps": [50, 150], "n_clusters": 5,
                 "random_state": 0},
    "clusters": clusters, "seconds": seconds,
})
