"""Pixel formats: 16-bit, float, gray and multichannel images; TIFF stacks, zarr and dask arrays."""

import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.datasets import read_array_images
from sklearn_ddpm.utils import check_images
from sklearn_ddpm.utils._pixels import to_rgb_uint8

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")


def _uint16(shape, seed=0):
    return np.random.default_rng(seed).integers(1000, 60000, shape).astype(np.uint16)


def test_percentile_intensity_spans_0_255_per_channel():
    image = _uint16((20, 30, 2))
    image[..., 1] //= 20  # a dim channel is stretched like a bright one
    rgb = to_rgb_uint8(image, channels=(0, 1, 1), intensity="percentile")
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    for c in range(3):
        assert rgb[..., c].min() == 0 and rgb[..., c].max() == 255
    # the mapping is monotone within a channel
    order = np.argsort(image[..., 0].ravel(), kind="stable")
    assert (np.diff(rgb[..., 0].ravel()[order].astype(int)) >= 0).all()


def test_channel_mappings_choose_or_average():
    image = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30, 40, 50)], -1)
    np.testing.assert_array_equal(to_rgb_uint8(image, channels=(4, 2, 0))[0, 0], [50, 30, 10])
    np.testing.assert_array_equal(to_rgb_uint8(image, channels=(1,))[0, 0], [20, 20, 20])
    np.testing.assert_array_equal(to_rgb_uint8(image, channels="mean")[0, 0], [30, 30, 30])
    np.testing.assert_array_equal(to_rgb_uint8(image[..., 0], channels="mean")[0, 0], [10, 10, 10])


@pytest.mark.parametrize("image, kwargs, match", [
    (np.zeros((8, 8, 5), np.uint8), {}, r"X\[0\] has shape \(8, 8, 5\).*channels=\(r, g, b\)"),
    (np.zeros((8, 8, 5), np.uint8), {"channels": (0, 7, 1)}, r"X\[0\] has 5 channel.*\[7\] do not exist"),
    (np.zeros((8, 8, 5), np.uint8), {"channels": (0, 1)}, "3 channel indices"),
    (np.full((8, 8, 3), 4000, np.uint16), {}, r"X\[0\] has values outside 0-255.*intensity='percentile'"),
    (np.full((8, 8, 3), np.nan), {"intensity": "percentile"}, "NaN"),
])
def test_unsupported_pixels_are_refused_naming_the_image(image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_images([image], **kwargs)


def test_tiff_stack_planes_become_images(tmp_path):
    stack = _uint16((3, 12, 16))
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, metadata={"axes": "ZYX"})
    images = read_array_images(path, channels="mean", intensity="percentile")
    assert [im.shape for im in images] == [(12, 16, 3)] * 3
    np.testing.assert_array_equal(images[1], to_rgb_uint8(stack[1], channels="mean", intensity="percentile"))
    multichannel = tmp_path / "cyx.tif"
    tifffile.imwrite(multichannel, _uint16((4, 12, 16)), metadata={"axes": "CYX"})
    (image,) = read_array_images(multichannel, channels=(3, 2, 1), intensity="percentile")
    assert image.shape == (12, 16, 3)
    with pytest.raises(ValueError, match=r"cyx.tif has shape \(12, 16, 4\)"):
        read_array_images(multichannel, intensity="percentile")


def test_damaged_and_foreign_files_are_named(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00not a tiff")
    with pytest.raises(ValueError, match="broken.tif: not a TIFF file"):
        read_array_images(bad)
    with pytest.raises(FileNotFoundError, match="missing.zarr"):
        read_array_images(tmp_path / "missing.zarr")


def test_zarr_arrays_are_read_and_are_api_inputs(tmp_path, tiny_backbone):
    data = np.random.default_rng(0).integers(0, 255, (2, 40, 48, 3), dtype=np.uint8)
    store = zarr.open_array(str(tmp_path / "images.zarr"), mode="w", shape=data.shape, dtype=data.dtype,
                            chunks=(1, 16, 16, 3))
    store[:] = data
    read = read_array_images(tmp_path / "images.zarr")
    assert len(read) == 2 and all(np.array_equal(a, b) for a, b in zip(read, data))
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=(3,), steps=(50,)).fit()
    expected = transformer.transform(data).dense_image(1)
    np.testing.assert_array_equal(transformer.transform(zarr.open_array(str(tmp_path / "images.zarr"))).dense_image(1),
                                  expected)
    dask_array = pytest.importorskip("dask.array")
    np.testing.assert_array_equal(transformer.transform(dask_array.from_array(data, chunks=(1, 20, 24, 3)))
                                  .dense_image(1), expected)


def test_transformer_reads_16_bit_gray_stacks(tiny_backbone):
    stack = _uint16((2, 32, 32))
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=(3,), steps=(50,), channels="mean",
                                         intensity="percentile").fit()
    features = transformer.transform(stack)
    assert features.shape[:3] == (2, 32, 32)
    np.testing.assert_array_equal(features.images[0], to_rgb_uint8(stack[0], "mean", "percentile"))
