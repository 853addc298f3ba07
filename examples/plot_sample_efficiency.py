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
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sklearn_ddpm.datasets import load_horses  # noqa: E402
from sklearn_ddpm.studies import plot_sample_efficiency, sample_efficiency  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)


def shrink(images, masks, longer_side=256):
    """Scale images (bilinear) and masks (nearest) so the longer side is at most ``longer_side``.

    The paper scores at 256 px; smaller images also keep this CPU example quick.
    """
    out_images, out_masks = [], []
    for image, mask in zip(images, masks):
        scale = min(1.0, longer_side / max(image.shape[:2]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        out_images.append(np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)))
        out_masks.append(np.asarray(Image.fromarray(np.asarray(mask, np.uint8)).resize(size, Image.NEAREST)))
    return out_images, out_masks


train, test = load_horses(split="train"), load_horses(split="test")
X_train, y_train = shrink(train.images, train.masks)
X_test, y_test = shrink(test.images, test.masks)
start = time.perf_counter()
runs = sample_efficiency(X_train, y_train, X_test, y_test, n_labeled=(1, 2, 5, 10),
                         seeds=(0, 1, 2))
seconds = time.perf_counter() - start

print((runs.groupby("n_labeled").miou.agg(["mean", "std"]) * 100).round(1).to_string())
print(f"{len(runs)} runs in {seconds:.0f} s")

fig = plot_sample_efficiency(runs, title="Bundled horse DDPM: mIoU vs labelled horses")
fig.savefig(OUTPUT / "sample_efficiency.png", dpi=120)
plt.close(fig)
