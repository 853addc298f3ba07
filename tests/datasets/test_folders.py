"""Image/mask folders: pairing by file name, formats, class-names files, and bad input."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm.datasets._folders import (
    check_mask_labels,
    default_class_names,
    list_images,
    load_image_folder,
    pair_images_and_masks,
    read_class_names,
    read_image_list,
)
from sklearn_ddpm.utils import check_masks
from sklearn_ddpm.plotting import label_palette


def _rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _mask(height, width, labels=(0, 1)):
    mask = np.full((height, width), labels[0], np.uint8)
    mask[height // 2:, :] = labels[1]
    return mask


@pytest.fixture
def folders(tmp_path):
    """Images of mixed formats and sizes with masks as L PNG, palette PNG and .npy."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(_rgb(20, 30)).save(images / "a.jpg", quality=95)
    Image.fromarray(_rgb(24, 16, 1)).save(images / "b.png")
    Image.fromarray(_rgb(18, 18, 2)).save(images / "c.tiff")
    Image.fromarray(_mask(20, 30)).save(masks / "a.png")
    palette_mask = Image.fromarray(_mask(24, 16, (0, 2)), mode="P")
    palette_mask.putpalette(label_palette().ravel().tolist())
    palette_mask.save(masks / "b.png")
    np.save(masks / "c.npy", _mask(18, 18, (1, 255)).astype(np.int32))
    (images / "notes.txt").write_text("not an image")
    (images / ".hidden.jpg").write_bytes(b"")
    return images, masks


def test_pairs_by_stem_across_formats(folders):
    images, masks = folders
    found = pair_images_and_masks(images, masks)
    assert [(p.name, m.name) for p, m in found.pairs] == [("a.jpg", "a.png"), ("b.png", "b.png"), ("c.tiff", "c.npy")]
    assert found.unpaired_images == [] and found.unpaired_masks == []


def test_load_reads_every_mask_kind_at_original_size(folders):
    images, masks = folders
    data = load_image_folder(images, masks)
    assert data.names == ["a", "b", "c"]
    assert [im.shape for im in data.images] == [(20, 30, 3), (24, 16, 3), (18, 18, 3)]
    for image, mask in zip(data.images, data.masks):
        assert mask.shape == image.shape[:2] and mask.dtype == np.int64
    assert set(np.unique(data.masks[1])) == {0, 2}  # palette indices, not colours
    assert set(np.unique(data.masks[2])) == {1, 255}
    assert data.class_names is None


def test_unpaired_files_are_reported(folders):
    images, masks = folders
    Image.fromarray(_rgb(10, 10)).save(images / "lonely.png")
    Image.fromarray(_mask(10, 10)).save(masks / "orphan.png")
    with pytest.warns(UserWarning) as record:
        data = load_image_folder(images, masks)
    messages = " ".join(str(w.message) for w in record)
    assert "1 image file(s) without a matching mask" in messages and "lonely.png" in messages
    assert "1 mask file(s) without a matching image" in messages and "orphan.png" in messages
    assert "lonely" not in data.names
    assert [p.name for p in data.unpaired_images] == ["lonely.png"]
    assert [p.name for p in data.unpaired_masks] == ["orphan.png"]


def test_no_pair_at_all_is_an_error(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "i" / "x.png")
    Image.fromarray(_mask(8, 8)).save(tmp_path / "m" / "y.png")
    with pytest.raises(ValueError, match="no image of .* has a mask"):
        pair_images_and_masks(tmp_path / "i", tmp_path / "m")


def test_empty_missing_and_file_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no image files"):
        list_images(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(NotADirectoryError, match="is a file"):
        list_images(tmp_path / "empty" / "readme.txt")


def test_two_images_with_one_stem_are_an_error(tmp_path):
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "a.png")
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="used by several images"):
        list_images(tmp_path)


def test_corrupt_image_names_the_file(folders):
    images, masks = folders
    (images / "a.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(ValueError, match="a.jpg"):
        load_image_folder(images, masks)


def test_mask_of_another_size_names_both_files(folders):
    images, masks = folders
    Image.fromarray(_mask(21, 30)).save(masks / "a.png")
    with pytest.raises(ValueError, match=r"a\.png is 30x21 .*a\.jpg is 30x20"):
        load_image_folder(images, masks)


def test_rgb_mask_is_rejected_with_its_name(folders):
    images, masks = folders
    Image.fromarray(_rgb(20, 30)).save(masks / "a.png")
    with pytest.raises(ValueError, match=r"a\.png.*single-channel"):
        load_image_folder(images, masks)


def test_labels_outside_the_classes_name_the_file(folders):
    images, masks = folders
    # b.png holds label 2: too many for two classes; c.npy's 255 is "unlabelled" and allowed.
    with pytest.raises(ValueError, match=r"b\.png: labels \[2\] are outside the 2 classes"):
        load_image_folder(images, masks, class_names=["background", "horse"])
    data = load_image_folder(images, masks, n_classes=3)
    assert len(data.masks) == 3


def test_check_mask_labels_allows_ignore():
    check_mask_labels(np.array([[0, 1, 255]]), 2, "m.png")
    with pytest.raises(ValueError, match="m.png"):
        check_mask_labels(np.array([[0, -1]]), 2, "m.png")


def test_binary_0_255_masks_get_a_hint(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "i" / "x.png")
    Image.fromarray(_mask(8, 8, (0, 255))).save(tmp_path / "m" / "x.png")
    with pytest.warns(UserWarning, match="save the foreground as 1"):
        load_image_folder(tmp_path / "i", tmp_path / "m")


def test_grayscale_and_rgba_images_become_rgb_with_a_warning(tmp_path):
    Image.fromarray(_rgb(8, 10)[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([_rgb(8, 10), np.full((8, 10), 128, np.uint8)])).save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="converted to RGB"):
        data = load_image_folder(tmp_path)
    assert [im.shape for im in data.images] == [(8, 10, 3), (8, 10, 3)]
    assert data.masks is None


def test_exif_orientation_is_applied(tmp_path):
    pixels = _rgb(10, 20)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    loaded = load_image_folder(tmp_path).images[0]
    assert loaded.shape == (20, 10, 3)
    # The stored top-left corner must end up top-right after a clockwise turn.
    stored = np.asarray(Image.open(tmp_path / "phone.jpg")).astype(int)
    assert np.abs(loaded.astype(int) - np.rot90(stored, k=-1)).mean() < 1


@pytest.mark.parametrize("name, text", [
    ("classes.txt", "background\n\nhorse \n"),
    ("classes.json", json.dumps(["background", "horse"])),
    ("classes.json", json.dumps({"1": "horse", "0": "background"})),
    ("classes.json", json.dumps({"names": ["background", "horse"]})),
    ("classes.yaml", "- background\n- horse\n"),
    ("classes.yml", "names:\n  0: background\n  1: horse\n"),
])
def test_class_names_files(tmp_path, name, text):
    if name.endswith((".yaml", ".yml")):
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(text)
    assert read_class_names(path) == ["background", "horse"]


@pytest.mark.parametrize("name, text, match", [
    ("c.json", "[1, ", "cannot parse"),
    ("c.json", json.dumps({"0": "a", "2": "b"}), "without gaps"),
    ("c.json", json.dumps({"x": "a"}), "integer keys"),
    ("c.txt", "a\nb\na\n", "duplicate"),
    ("c.txt", "\n\n", "no class names"),
    ("c.json", json.dumps(3), "expected a list"),
])
def test_bad_class_names_files(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_class_names(path)


def test_missing_class_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="class-names file not found"):
        read_class_names(tmp_path / "nope.txt")


def test_class_names_file_sets_the_class_count(folders, tmp_path):
    images, masks = folders
    path = tmp_path / "names.txt"
    path.write_text("sky\nground\nhorse\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder loads without any warning
        data = load_image_folder(images, masks, class_names=path)
    assert data.class_names == ["sky", "ground", "horse"]


# -- issue 15: one function per fact ---------------------------------------------------------------
def test_mask_size_message_is_the_same_for_files_and_arrays(folders):
    images, masks = folders
    Image.fromarray(_mask(21, 30)).save(masks / "a.png")
    with pytest.raises(ValueError) as from_files:
        load_image_folder(images, masks)
    with pytest.raises(ValueError) as from_arrays:
        check_masks([np.zeros((21, 30))], [(20, 30)])
    assert str(from_files.value) == (f"{masks / 'a.png'} is 30x21 (width x height) but its image {images / 'a.jpg'} "
                                     "is 30x20; a mask must have its image's size.")
    assert str(from_arrays.value) == "y[0] is 30x21 (width x height) but its image is 30x20; a mask must have its image's size."


def test_read_image_list(tmp_path):
    listing = tmp_path / "split.txt"
    listing.write_text("# the training split\nhorse.001.jpg\n\n  horse.002  # no extension\n")
    assert read_image_list(listing) == ["horse.001.jpg", "horse.002"]
    listing.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="names no image"):
        read_image_list(listing)
    with pytest.raises(FileNotFoundError, match="--image-list file not found: .*missing.txt"):
        read_image_list(tmp_path / "missing.txt")


def test_listed_names_match_file_names_or_stems_with_dots(tmp_path):
    for stem in ("horse.001", "horse.002", "horse.003"):
        Image.fromarray(_rgb(8, 8)).save(tmp_path / f"{stem}.png")
    # "horse.002" is a stem, not "horse" with extension ".002".
    assert [p.name for p in list_images(tmp_path, only=["horse.001.png", "horse.002"])] == ["horse.001.png",
                                                                                           "horse.002.png"]
    with pytest.raises(ValueError, match="horse.004"):
        list_images(tmp_path, only=["horse.004"])


def test_default_class_names():
    assert default_class_names(3) == ["class 0", "class 1", "class 2"]
    assert default_class_names(3, ["sky", "road"]) == ["sky", "road", "class 2"]
    assert default_class_names(1, ["sky", "road"]) == ["sky", "road"]
