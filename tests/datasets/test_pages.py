"""The folder reader of fit / predict / evaluate: TIFF (16-bit, float, stacks), zarr stores, 16-bit PNG."""

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm.datasets import load_image_folder
from sklearn_ddpm.datasets._folders import (ImagePage, PageReader, image_stem, list_image_pages, read_page_mask)
from sklearn_ddpm.datasets._io import read_image_pixels
from sklearn_ddpm.utils._pixels import to_rgb_uint8

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")


def _scene(i, size=(24, 30)):
    mask = np.zeros(size, np.uint8)
    mask[4 + i:14 + i, 6:18] = 1
    return mask


def test_sixteen_bit_png_keeps_its_values(tmp_path):
    values = (np.arange(24 * 30).reshape(24, 30) * 80).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "gray16.png")
    pixels = read_image_pixels(tmp_path / "gray16.png", channels="mean")
    assert pixels.dtype == np.uint16 and np.array_equal(pixels, values)
    # Without channels a 16-bit image is not squeezed into 8-bit RGB behind the user's back.
    assert np.array_equal(read_image_pixels(tmp_path / "gray16.png"), values)
    with pytest.raises(ValueError, match="gray16.png.*channels='mean'"):
        PageReader().read(tmp_path / "gray16.png")
    rgb = PageReader("mean", "percentile").rgb(tmp_path / "gray16.png")
    assert rgb.shape == (24, 30, 3) and rgb.min() == 0 and rgb.max() == 255


def test_stacks_and_zarr_stores_are_one_image_per_plane(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    stack = np.stack([_scene(i).astype(np.uint16) * 30000 + 100 for i in range(5)])
    tifffile.imwrite(folder / "cells.ome.tif", stack, metadata={"axes": "ZYX"})
    tifffile.imwrite(folder / "single.tif", stack[0])
    zarr.create_array(str(folder / "volume.zarr"), data=np.stack([_scene(i) for i in range(2)]).astype(np.float32))
    Image.fromarray(np.zeros((24, 30, 3), np.uint8)).save(folder / "photo.jpg")
    (folder / "notes.txt").write_text("not an image")
    pages = list_image_pages(folder)
    assert [p.stem for p in pages] == ["cells_0000", "cells_0001", "cells_0002", "cells_0003", "cells_0004",
                                       "photo", "single", "volume_0000", "volume_0001"]
    assert pages[2] == ImagePage(folder / "cells.ome.tif", 2, 5) and str(pages[2]).endswith("cells.ome.tif[2]")
    reader = PageReader(channels=(0,), intensity="percentile")
    for k in range(5):  # one file read for its five pages, the planes in order
        pixels, rgb = reader.read(pages[k])
        assert np.array_equal(pixels, stack[k]) and rgb.shape == (24, 30, 3)
    assert np.array_equal(reader.pixels(pages[8]), _scene(1).astype(np.float32))
    assert image_stem(folder / "cells.ome.tif") == "cells" and image_stem(pages[8]) == "volume_0001"


def test_mask_stacks_pair_plane_by_plane(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    stack = np.stack([_scene(i) for i in range(5)])
    tifffile.imwrite(images / "s.tif", (stack.astype(np.float32) * 7.5 + 2), metadata={"axes": "ZYX"})
    np.save(masks / "s.npy", stack)
    data = load_image_folder(images, masks, channels="mean", intensity="percentile")
    assert data.names == [f"s_{k:04d}" for k in range(5)]
    assert [p.name for p in data.pages] == [f"s.tif[{k}]" for k in range(5)]
    for k in range(5):
        assert np.array_equal(data.masks[k], stack[k]) and data.images[k].dtype == np.uint8
        # The image the model sees: the plane mapped as DDPMFeatureTransformer(channels, intensity) maps it.
        assert np.array_equal(data.images[k], to_rgb_uint8(stack[k] * np.float32(7.5) + 2, "mean", "percentile"))
    np.save(masks / "s.npy", stack[:3])
    with pytest.raises(ValueError, match=r"s\.npy holds 3 mask plane\(s\), but its image .*s\.tif holds 5"):
        load_image_folder(images, masks, channels="mean", intensity="percentile")


@pytest.mark.parametrize("make, match", [
    (lambda p: zarr.create_array(str(p / "five.zarr"), data=np.zeros((2, 2, 2, 8, 8), np.uint8)),
     r"five\.zarr: an array of shape \(2, 2, 2, 8, 8\) without axis names"),
    (lambda p: tifffile.imwrite(p / "empty.tif", np.zeros((0, 8), np.uint16)),
     r"empty\.tif: the array of shape \(0, 8\).*holds no pixels"),
    (lambda p: (p / "broken.tif").write_bytes(b"II*\x00garbage"), r"broken\.tif: not a TIFF file tifffile can read"),
    (lambda p: tifffile.imwrite(p / "wide16.tif", np.full((8, 8), 4000, np.uint16)),
     r"wide16\.tif has values outside 0-255.*intensity='percentile'"),
])
def test_unsupported_files_are_refused_naming_the_file(tmp_path, make, match):
    folder = tmp_path / "images"
    folder.mkdir()
    with pytest.warns(UserWarning) if "empty" in match else _no_warning():
        make(folder)
    pages = list_image_pages(folder)  # listing never fails on a bad file: reading it names it
    assert len(pages) == 1
    with pytest.raises(ValueError, match=match):
        PageReader(channels="mean").read(pages[0])


def test_gray_8bit_tiff_reads_as_rgb_like_a_gray_png(tmp_path):
    gray = (np.arange(24 * 30).reshape(24, 30) % 256).astype(np.uint8)
    tifffile.imwrite(tmp_path / "g.tif", gray)
    Image.fromarray(gray).save(tmp_path / "g.png")
    with pytest.warns(UserWarning, match="converted to RGB"):
        from_tiff = PageReader().rgb(tmp_path / "g.tif")
    with pytest.warns(UserWarning, match="converted to RGB"):
        from_png = PageReader().rgb(tmp_path / "g.png")
    assert np.array_equal(from_tiff, from_png)


def test_page_mask_of_a_single_image_checks_size_and_labels(tmp_path):
    Image.fromarray(_scene(0) * 3).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"m\.png: labels \[3\] are outside the 2 classes"):
        read_page_mask(ImagePage(tmp_path / "a.tif"), tmp_path / "m.png", n_classes=2, shape=(24, 30))
    with pytest.raises(ValueError, match=r"m\.png"):
        read_page_mask(ImagePage(tmp_path / "a.tif"), tmp_path / "m.png", shape=(20, 30))


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
