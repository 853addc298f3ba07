"""Tests of the image/mask readers and the data set loaders."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm.datasets import (
    load_ccp_clothing,
    load_horses,
    load_weizmann_horse,
    read_image,
    read_mask,
)



# ---------------------------------------------------------------- read_image / read_mask
def test_read_image_rgb_roundtrip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_read_image_converts_to_rgb_with_warning(tmp_path, mode):
    Image.new(mode, (4, 3)).save(tmp_path / f"img_{mode}.png")
    with pytest.warns(UserWarning, match=f"img_{mode}.png"):
        out = read_image(tmp_path / f"img_{mode}.png")
    assert out.shape == (3, 4, 3)


def test_read_image_applies_exif_orientation(tmp_path):
    img = Image.new("RGB", (6, 2))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").shape == (6, 2, 3)


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_read_mask_formats(tmp_path):
    mask = np.array([[0, 1, 2], [3, 0, 1]], dtype=np.uint8)
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)

    pal = Image.fromarray(mask, mode="L").convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), mask)

    np.save(tmp_path / "m.npy", mask.astype(np.int64))
    out = read_mask(tmp_path / "m.npy")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, mask)


def test_read_mask_rejects_rgb_and_float(tmp_path):
    Image.new("RGB", (3, 2)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png"):
        read_mask(tmp_path / "rgb.png")
    np.save(tmp_path / "f.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="integer"):
        read_mask(tmp_path / "f.npy")
    np.save(tmp_path / "3d.npy", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        read_mask(tmp_path / "3d.npy")


# ---------------------------------------------------------------- bundled horses
def test_load_horses_bundled():
    data = load_horses()
    assert len(data.images) == len(data.masks) == len(data.names) == 20
    assert list(data.split) == ["train"] * 10 + ["test"] * 10
    assert data.class_names == ["background", "horse"]
    assert "Borenstein" in data.DESCR
    for img, mask in zip(data.images, data.masks):
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert mask.shape == img.shape[:2]
        assert set(np.unique(mask)) <= {0, 1}
    train, test = load_horses("train"), load_horses(split="test")
    assert train.names == data.names[:10] and test.names == data.names[10:]
    assert not set(train.names) & set(test.names)
    with pytest.raises(ValueError, match="split"):
        load_horses("val")


def test_bundled_horses_match_the_shared_split(weizmann_root):
    splits = json.loads((weizmann_root / "splits.json").read_text())
    assert load_horses("train").names == splits["labeled_pool"][:10]
    assert load_horses("test").names == splits["test"][:10]
    shared = load_weizmann_horse(weizmann_root, split="test", n=1)
    np.testing.assert_array_equal(shared.images[0], load_horses("test").images[0])


# ---------------------------------------------------------------- shared data sets
def test_load_weizmann_horse(weizmann_root):
    data = load_weizmann_horse(weizmann_root, split="labeled_pool", n=3)
    splits = json.loads((weizmann_root / "splits.json").read_text())
    assert data.names == splits["labeled_pool"][:3]
    assert data.split == "labeled_pool" and data.class_names == ["background", "horse"]
    assert all(m.shape == i.shape[:2] for i, m in zip(data.images, data.masks))
    assert load_weizmann_horse(weizmann_root, split="test", n=1).names == splits["test"][:1]
    assert load_weizmann_horse(weizmann_root, split="unlabeled", n=2).masks is None
    with pytest.raises(ValueError, match="Unknown split"):
        load_weizmann_horse(weizmann_root, split="train")
    with pytest.raises(ValueError, match="n must be"):
        load_weizmann_horse(weizmann_root, split="labeled_pool", n=51)


@pytest.mark.parametrize("coarse, n_classes", [(True, 11), (False, 59)])
def test_load_ccp_clothing(ccp_root, coarse, n_classes):
    data = load_ccp_clothing(ccp_root, split="labeled_pool", coarse=coarse, n=2)
    assert len(data.class_names) == n_classes and data.class_names[0] in ("background", "null")
    assert all(m.shape == i.shape[:2] and m.max() < n_classes for i, m in zip(data.images, data.masks))
    unl = load_ccp_clothing(ccp_root, split="unlabeled", n=1)
    assert unl.masks is None and len(unl.images) == 1


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="root="):
        load_weizmann_horse(tmp_path / "nowhere")


def test_the_package_does_not_know_the_repository_layout():
    """The shared data sets' folder is an argument: no default points next to a source checkout."""
    import inspect

    import sklearn_ddpm.datasets as datasets
    import sklearn_ddpm.datasets._io as io

    assert not hasattr(io, "shared_data_root")
    for loader in (load_weizmann_horse, load_ccp_clothing):
        assert inspect.signature(loader).parameters["root"].default is inspect.Parameter.empty
        with pytest.raises(TypeError, match="root"):
            loader()
    package = Path(datasets.__file__).resolve().parents[1]
    for path in package.rglob("*.py"):
        text = path.read_text()
        for pattern in ('"shared" / "data"', "shared/data", "shared_data_root"):
            assert pattern not in text, f"{path} names the repository's shared data folder ({pattern})"
