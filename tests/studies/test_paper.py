import json

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm.studies import PAPER_DATASETS, load_paper_dataset, reproduce

from ..cli._spy import UNetBatchSpy


def _fake_dataset(root, name, n_train, n_test, size=20, seed=0):
    """``<root>/<name>/real/{train,test}`` with .jpg images and .npy labels, as in datasets.tar.gz."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        folder = root / name / "real" / split
        folder.mkdir(parents=True)
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            label[size // 4:, : size // 2] = 1
            label[: size // 5, size // 2:] = 2
            label[0, 0] = 255
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8) + (label[..., None] % 255) * 80
            # names sort as the reference sorts them, not in creation order
            stem = f"img_{(i * 7) % n:03d}"
            Image.fromarray(image).save(folder / f"{stem}.jpg", quality=95)
            np.save(folder / f"{stem}.npy", label)
    return root


def test_paper_table_matches_reference_configs():
    assert {name: (d.n_classes, d.n_train, d.n_test) for name, d in PAPER_DATASETS.items()} == {
        "bedroom_28": (29, 40, 20), "ffhq_34": (34, 20, 20), "cat_15": (15, 30, 20),
        "horse_21": (21, 30, 30), "celeba_19": (19, 20, 500), "ade_bedroom_30": (30, 50, 650)}
    assert PAPER_DATASETS["bedroom_28"].ignore_index == 0
    assert {name: (d.paper_miou, d.paper_std) for name, d in PAPER_DATASETS.items()} == {
        "bedroom_28": (49.4, 1.9), "ffhq_34": (59.1, 1.4), "cat_15": (53.7, 3.3), "horse_21": (65.0, 0.8),
        "celeba_19": (59.9, 1.0), "ade_bedroom_30": (34.6, 1.7)}


def test_loader_reads_reference_layout(tmp_path):
    _fake_dataset(tmp_path / "datasets", "cat_15", n_train=31, n_test=20)
    data = load_paper_dataset(tmp_path / "datasets", "cat_15", "train")
    assert len(data.images) == 30  # the reference's training_number, first in sorted order
    assert [p.rsplit("/", 1)[-1] for p in data.filenames[:2]] == ["img_000.jpg", "img_001.jpg"]
    assert data.images[0].shape == (20, 20, 3) and data.images[0].dtype == np.uint8
    assert data.masks[0].shape == (20, 20) and data.masks[0][0, 0] == 255
    assert data.info.n_classes == 15
    # the parent of datasets/ works too; resolution resizes images and masks (nearest: labels kept)
    images, masks = load_paper_dataset(tmp_path, "cat_15", "test", n=2, resolution=40, return_X_y=True)
    assert images[1].shape == (40, 40, 3) and masks[1].shape == (40, 40)
    assert set(np.unique(masks[1])) == {0, 1, 2, 255}


def test_loader_errors(tmp_path):
    _fake_dataset(tmp_path, "horse_21", n_train=3, n_test=1)
    with pytest.raises(ValueError, match="holds 3 images but 30 are needed"):
        load_paper_dataset(tmp_path, "horse_21", "train")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_paper_dataset(tmp_path, "horse_22")
    with pytest.raises(FileNotFoundError, match="ffhq_34"):
        load_paper_dataset(tmp_path, "ffhq_34")
    next((tmp_path / "horse_21" / "real" / "test").glob("*.npy")).unlink()
    with pytest.raises(FileNotFoundError, match="no label file"):
        load_paper_dataset(tmp_path, "horse_21", "test", n=1)


def test_reproduce_end_to_end_on_fake_data(tmp_path, capsys):
    from sklearn_ddpm.backbone import Backbone, tiny_unet
    from sklearn_ddpm.cli import main

    datasets = _fake_dataset(tmp_path / "datasets", "horse_21", n_train=2, n_test=1)
    # An 18-block decoder (ADM-256's six levels), as the paper's blocks 5, 6, 7, 8, 12 need, at 64² to
    # stay fast; saved under the reference's checkpoint name.
    unet = tiny_unet(image_size=64, base_channels=8, channel_mult=(1, 1, 2, 2, 4, 4))
    Backbone(unet).save_pretrained(tmp_path / "ckpt" / "lsun_horse")
    csv = tmp_path / "table.csv"
    with UNetBatchSpy() as spy:
        code = main(["reproduce", "--datasets-root", str(datasets), "--checkpoints", str(tmp_path / "ckpt"),
                     "--seeds", "0", "1", "--n-estimators", "2", "--max-epochs", "2", "--max-pixels-per-image", "300",
                     "--n-train", "2", "--n-test", "1", "--resolution", "32", "--batch-size", "1",
                     "--output", str(csv), "--quiet"])
    assert code == 0
    # --batch-size counts images: one image per pass (one pass per image and step), whatever the number of
    # steps; the paper's 3 steps would make passes of 3 inputs if the steps were multiplied in.
    assert len(spy.rows) >= 9 and max(spy.rows) == 1
    out = capsys.readouterr().out
    assert "horse_21" in out and "65.0 ± 0.8" in out

    import pandas as pd

    table = pd.read_csv(csv)
    row = table.iloc[0]
    assert (row.n_train, row.n_test, row.n_classes) == (2, 1, 21)
    mious = json.loads(row.mious)
    assert row.miou_mean == pytest.approx(np.mean(mious)) and row.miou_std == pytest.approx(np.std(mious, ddof=1))

    # Seed 1 recomputed by hand: the paper's blocks and steps, 21 fixed classes.
    X_train, y_train = load_paper_dataset(datasets, "horse_21", "train", n=2, resolution=32, return_X_y=True)
    X_test, y_test = load_paper_dataset(datasets, "horse_21", "test", n=1, resolution=32, return_X_y=True)
    assert X_test[0].shape == (32, 32, 3)
    transformer = DDPMFeatureTransformer(str(tmp_path / "ckpt" / "lsun_horse"), blocks=(5, 6, 7, 8, 12),
                                         steps=(50, 150, 250)).fit()
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, max_pixels_per_image=300, max_pixels_per_class=None, n_classes=21,
                                random_state=1).fit(transformer.transform(X_train), y_train)
    assert mious[1] == pytest.approx(100 * clf.score(transformer.transform(X_test), y_test), abs=1e-6)


def test_reproduce_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="none of the paper's datasets"):
        reproduce(tmp_path, tmp_path)
    _fake_dataset(tmp_path, "cat_15", n_train=1, n_test=1)
    with pytest.raises(FileNotFoundError, match="lsun_cat.pt"):
        reproduce(tmp_path, tmp_path, n_train=1, n_test=1, progress=False)
    with pytest.raises(ValueError, match="unknown datasets"):
        reproduce(tmp_path, tmp_path, datasets=["cat_16"])
