"""``DDPMFeatureTransformer(tile=...)``: tiles at a chosen scale, blended across seams."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm.features import _tiled
from sklearn_ddpm.features._extraction import noise_for, to_model_input
from sklearn_ddpm.features._tiling import tile_grid

from ..conftest import make_squares

BLOCKS = (3, 6, 9)


def _smooth_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (gaussian_filter(rng.random((*shape, 3)), (3, 3, 0)) * 3 * 255).clip(0, 255).astype(np.uint8)


def test_grid_tiles_cover_the_image_with_offsets_on_the_unets_multiple():
    grid = tile_grid((340, 512), tile=64, overlap=16, scale=4.0, multiple=8)
    assert grid.grid_size == (88, 128)
    for offsets, extent in zip(grid.offsets, grid.grid_size):
        assert offsets[0] == 0 and offsets[-1] + 64 == extent
        assert all(o % 8 == 0 for o in offsets)
        assert all(b - a <= 64 - 16 for a, b in zip(offsets, offsets[1:]))  # overlaps of at least 16
    for factor in (1, 2, 8):
        rows, columns = grid.blend_weights(factor)
        for weights, offsets, extent in ((rows, grid.offsets[0], 88), (columns, grid.offsets[1], 128)):
            total = torch.zeros(extent // factor)
            for w, o in zip(weights, offsets):
                total[o // factor : o // factor + len(w)] += w
            torch.testing.assert_close(total, torch.ones_like(total))
    # an image smaller than a tile at this scale is the image resized to one tile
    assert tile_grid((40, 48), 64, 16, 1.0, 8).offsets == ((0,), (0,))


def test_an_image_that_fits_one_tile_gets_the_untiled_features_bit_for_bit(tiny_backbone):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)]
    untiled = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50, 150)).fit().transform(images)
    tiled = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50, 150), tile="auto", scale=2.0).fit()
    features = tiled.transform(images)
    assert isinstance(features, _tiled.TiledPixelFeatures)
    for i in range(2):
        np.testing.assert_array_equal(features.dense_image(i), untiled.dense_image(i))
    weight = torch.randn(2, features.n_features, 5, generator=torch.Generator().manual_seed(0))
    for i in range(2):
        a = torch.cat([v for _, _, v in features.projected_bands(i, weight, band_rows=7)])
        b = torch.cat([v for _, _, v in untiled.projected_bands(i, weight, band_rows=7)])
        assert torch.equal(a, b)


def _full_size_reference(backbone, image, tile, step, blocks):
    """The image's model grid through the UNet in one pass, noised with the same noise field as its tiles."""
    height, width = image.shape[:2]
    noise = torch.cat([torch.cat([noise_for(0, 0, step, (3, tile, tile), False, (cy, cx))
                                  for cx in range(width // tile)], 2) for cy in range(height // tile)], 1)
    x0 = to_model_input(image[None])
    t = torch.full((1,), step)
    x_t = backbone.scheduler.add_noise(x0, noise[None], t)
    acts = backbone.decoder_activations(x_t, t, blocks)
    return torch.cat([F.interpolate(acts[b].float(), size=(height, width), mode="bilinear", align_corners=False)
                      for b in blocks], 1)[0].permute(1, 2, 0).numpy()


def _seam_jump(features, grid):
    """Mean feature change between neighbouring columns at tile edges, over that elsewhere."""
    jump = np.abs(np.diff(features, axis=1)).mean((0, 2))
    offsets = grid.offsets[1]
    edges = sorted({o for o in offsets[1:]} | {o + grid.tile for o in offsets[:-1]})
    at = [e - 1 for e in edges if 0 < e < features.shape[1]]
    elsewhere = [x for x in range(len(jump)) if all(abs(x - a) > 2 for a in at)]
    return jump[at].mean() / jump[elsewhere].mean()


def test_blending_hides_the_seams_and_brings_tiles_closer_to_the_whole_image(tiny_backbone):
    """Tiles of 32 of a 96 x 128 image, vs the 96 x 128 image in one UNet pass with the same noise.

    GroupNorm (statistics over the whole input) and the tiny UNet's self-attention make a tile's
    activations depend on all of it, so tiled features cannot equal one-pass features anywhere;
    what blending buys is measured instead: the jump of the features across tile edges (relative
    to neighbouring columns elsewhere; about 1.8 with abutting tiles, 1.25 with an overlap of 8
    when written) and the distance to the one-pass features.
    """
    image = _smooth_image((96, 128))
    reference = _full_size_reference(tiny_backbone, image, 32, 50, BLOCKS)
    jumps, distances = {}, {}
    for overlap in (0, 8):
        transformer = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50,), tile=32,
                                             tile_overlap=overlap).fit()
        tiled = transformer.transform([image]).dense_image(0)
        jumps[overlap] = _seam_jump(tiled, tile_grid((96, 128), 32, overlap, 1.0, tiny_backbone.size_multiple))
        distances[overlap] = np.abs(tiled - reference).mean() / np.abs(reference).mean()
    print(f"seam jump {jumps}, relative distance to one pass {distances}")
    assert jumps[8] < jumps[0] - 0.3
    assert jumps[8] < 1.5
    assert distances[8] < distances[0]


def test_large_images_are_computed_band_by_band_with_the_same_numbers(tiny_backbone, monkeypatch):
    image = _smooth_image((100, 130), seed=1)
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50,), tile="auto", tile_overlap=8).fit()
    eager = transformer.transform([image])
    monkeypatch.setattr(_tiled, "EAGER_MOSAIC_BYTES", 0)
    lazy = transformer.transform([image])
    assert lazy.is_lazy(0) and not eager.is_lazy(0) and lazy.nbytes == 0
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, 100, 400), rng.integers(0, 130, 400)
    assert torch.equal(lazy.gather(np.zeros(400, int), ys, xs), eager.gather(np.zeros(400, int), ys, xs))
    weight, bias = torch.randn(3, lazy.n_features, 4), torch.randn(3, 4)
    a = torch.cat([v for _, _, v in lazy.projected_bands(0, weight, bias, band_rows=3)])
    b = torch.cat([v for _, _, v in eager.projected_bands(0, weight, bias, band_rows=3)])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # only a few tile rows are kept: the memory of a band, not of the image
    tiles = lazy.per_image[0].tile_row_maps
    assert 0 < len(tiles._rows) <= tiles.keep < len(tiles.grid.offsets[0])


def test_tiled_prediction_bands_equal_prediction(tiny_backbone, monkeypatch):
    images, masks = make_squares(4, (64, 80))
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50,), tile="auto").fit()
    features = transformer.transform(images)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, max_pixels_per_class=None, random_state=0,
                                predict_batch_size=300).fit(features, masks)
    monkeypatch.setattr(_tiled, "EAGER_MOSAIC_BYTES", 0)
    lazy = transformer.transform(images[:2])
    labels, uncertainty = clf.predict_with_uncertainty(features[:2])
    for i, top, bottom, out in clf.predict_bands(lazy):
        np.testing.assert_array_equal(out["labels"], labels[i, top:bottom])
        np.testing.assert_allclose(out["uncertainty"], uncertainty[i, top:bottom], atol=1e-4)  # float rounding


def test_tile_parameters_are_validated(tiny_backbone):
    with pytest.raises(ValueError, match="scale=2.0 applies to tiles"):
        DDPMFeatureTransformer(tiny_backbone, scale=2.0).fit()
    with pytest.raises(ValueError, match="tile_overlap applies to tiles"):
        DDPMFeatureTransformer(tiny_backbone, tile_overlap=4).fit()
    with pytest.raises(ValueError, match="divisible by 8"):
        DDPMFeatureTransformer(tiny_backbone, tile=36).fit()
    with pytest.raises(ValueError, match="smaller than the tile"):
        DDPMFeatureTransformer(tiny_backbone, tile=32, tile_overlap=32).fit()
    with pytest.raises(ValueError, match="both set the UNet's input"):
        DDPMFeatureTransformer(tiny_backbone, tile=32, image_size=64).fit()
    with pytest.raises(ValueError, match="scale"):
        DDPMFeatureTransformer(tiny_backbone, tile="auto", scale=0).fit()


def test_scale_is_a_setting_grid_search_chooses(tiny_backbone):
    images, masks = make_squares(6, (48, 48))
    pipe = Pipeline([
        ("features", DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50,), tile="auto")),
        ("clf", MLPEnsembleClassifier(n_estimators=1, max_epochs=2, max_pixels_per_class=None, random_state=0)),
    ])
    grid = GridSearchCV(pipe, {"features__scale": [1.0, 2.0]}, cv=GroupKFold(2))
    grid.fit(images, masks, groups=np.arange(6) % 3)
    assert grid.best_params_["features__scale"] in (1.0, 2.0)
    assert clone(pipe).set_params(features__scale=2.0).get_params()["features__scale"] == 2.0


def test_progress_bar_counts_tiles(tiny_backbone, capsys):
    image = _smooth_image((64, 96))
    DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50, 150), tile="auto", progress=True).fit().transform(
        [image])
    err = capsys.readouterr().err
    grid = tile_grid((64, 96), 32, 8, 1.0, 8)
    assert f"{grid.n_tiles * 2}/{grid.n_tiles * 2}" in err
