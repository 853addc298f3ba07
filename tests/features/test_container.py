"""``PixelFeatures``: the one place that upsamples native-resolution activations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sklearn_ddpm import PixelFeatures


def _features(image_sizes=((13, 17), (9, 30)), seed=0):
    """Maps at three native resolutions (two share one), smaller and larger than the images."""
    generator = torch.Generator().manual_seed(seed)
    n = len(image_sizes)
    maps = [torch.randn(n, *size, c, generator=generator) for size, c in [((4, 5), 3), ((4, 5), 2), ((20, 11), 4)]]
    return PixelFeatures(maps, [(50, 0), (50, 1), (50, 2)], image_sizes)


def _interpolated(features, i):
    """Image ``i`` upsampled by ``F.interpolate``, the convention the container promises."""
    size = tuple(int(v) for v in features.image_sizes[i])
    parts = [
        F.interpolate(m[i : i + 1].permute(0, 3, 1, 2).float(), size=size, mode="bilinear", align_corners=False)
        for m in features.maps
    ]
    return torch.cat(parts, dim=1)[0].permute(1, 2, 0)


def test_gather_matches_interpolate_across_images_of_different_sizes():
    features = _features()
    image_index = np.array([0, 1, 1, 0, 1])
    ys, xs = np.array([0, 8, 3, 12, 0]), np.array([16, 29, 0, 5, 14])
    expected = torch.stack([_interpolated(features, i)[y, x] for i, y, x in zip(image_index, ys, xs)])
    torch.testing.assert_close(features.gather(image_index, ys, xs), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("band_rows", [None, 1, 4])
def test_projected_bands_equal_the_projection_of_upsampled_features(band_rows):
    features = _features()
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(3, features.n_features, 6, generator=generator)  # e.g. 3 ensemble members
    bias = torch.randn(3, 6, generator=generator)
    for i, (height, width) in enumerate(features.image_sizes):
        expected = torch.einsum("hwd,mdk->hwmk", _interpolated(features, i), weight) + bias
        bands = list(features.projected_bands(i, weight, bias, band_rows=band_rows))
        assert [top for top, _, _ in bands] == list(range(0, height, band_rows or height))
        assert bands[-1][1] == height
        got = torch.cat([values for _, _, values in bands]).reshape(height, width, 3, 6)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_projected_bands_of_float16_maps_and_a_plain_weight_matrix():
    features = _features(image_sizes=[(8, 8)])
    half = PixelFeatures([m.half() for m in features.maps], features.layer_names, features.image_sizes)
    weight = torch.randn(features.n_features, 5, generator=torch.Generator().manual_seed(2))
    (_, _, values), = half.projected_bands(0, weight)
    expected = torch.from_numpy(half.dense_image(0)).reshape(64, -1) @ weight
    assert values.dtype == torch.float32 and values.shape == (64, 5)
    torch.testing.assert_close(values, expected, atol=1e-4, rtol=1e-4)


def test_projected_bands_refuse_a_weight_of_the_wrong_width():
    features = _features()
    with pytest.raises(ValueError, match="n_features=9"):
        next(features.projected_bands(0, torch.zeros(8, 2)))
