"""Shared fixtures: tiny random-init backbones, synthetic segmentation data, the shared real data."""

import json
from pathlib import Path

import numpy as np
import pytest

from sklearn_ddpm.backbone import Backbone, tiny_unet

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_backbone():
    """A ~0.6 M-parameter ADM-shaped UNet at 32², 12 decoder blocks."""
    return Backbone(tiny_unet(), source="tiny_unet")


def make_squares(n_images=6, size=(40, 40), seed=0):
    """Dark images with one bright square each; the square is class 1."""
    rng = np.random.default_rng(seed)
    height, width = size
    images = rng.integers(0, 60, (n_images, height, width, 3)).astype(np.uint8)
    masks = np.zeros((n_images, height, width), np.int64)
    side = min(height, width) // 3
    for i in range(n_images):
        y0 = rng.integers(0, height - side)
        x0 = rng.integers(0, width - side)
        images[i, y0 : y0 + side, x0 : x0 + side] += 150
        masks[i, y0 : y0 + side, x0 : x0 + side] = 1
    return images, masks


@pytest.fixture
def squares():
    return make_squares()


def _shared_dataset(name):
    root = SHARED_DATA / name
    if not (root / "splits.json").is_file():
        pytest.skip(f"shared data set {name} not found at {root} (../shared/data next to the repo)")
    return root


@pytest.fixture(scope="session")
def weizmann_root():
    return _shared_dataset("weizmann_horse")


@pytest.fixture(scope="session")
def ccp_root():
    return _shared_dataset("ccp_clothing")


def load_weizmann(root, split, n):
    """The first ``n`` images of a split, read with Pillow (kept independent of the package's loaders)."""
    from PIL import Image

    names = json.loads((root / "splits.json").read_text())[split][:n]
    images = [np.asarray(Image.open(root / "images" / f"{name}.jpg").convert("RGB")) for name in names]
    masks = [np.asarray(Image.open(root / "masks" / f"{name}.png")).astype(np.int64) for name in names]
    return images, masks


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest on one thread; with two, thread hand-offs dominate on a 2-core CI box."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
