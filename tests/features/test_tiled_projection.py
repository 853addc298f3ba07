"""Held (eager) tiled maps are projected a few native rows at a time, as band-by-band ones are.

Projected whole, the maps of a 2,000² image at scale 4 times 10 members x 128 hidden units took
1.2 GB at the finest native size, and ``sklearn-ddpm predict`` of that image peaked at 5 GB
(``benchmarks/results/large_image_cli_2000px_whole_projection.json``, before this).
"""

import numpy as np
import torch

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.features import _container

from .test_tiling import BLOCKS, _smooth_image


def test_held_tiled_maps_are_projected_by_rows_with_the_numbers_of_gather(tiny_backbone, monkeypatch):
    image = _smooth_image((100, 130), seed=2)
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=BLOCKS, steps=(50,), tile="auto", tile_overlap=8).fit()
    features = transformer.transform([image])
    assert not features.is_lazy(0)

    def whole_projection(*args, **kwargs):
        raise AssertionError("the whole-map projection of PixelFeatures was used")

    monkeypatch.setattr(_container.PixelFeatures, "projected_bands", whole_projection)
    weight, bias = torch.randn(3, features.n_features, 4), torch.randn(3, 4)
    bands = list(features.projected_bands(0, weight, bias, band_rows=7))
    assert [b[0] for b in bands] == list(range(0, 100, 7)) and bands[-1][1] == 100
    values = torch.cat([v for _, _, v in bands])  # (pixels, members, k)
    ys, xs = np.divmod(np.arange(100 * 130), 130)
    gathered = features.gather(np.zeros(len(ys), int), ys, xs)
    want = torch.einsum("nf,mfk->nmk", gathered, weight) + bias
    torch.testing.assert_close(values, want, rtol=1e-4, atol=1e-4)
