"""Fixtures of the synthetic-data tests: a tiny ε-prediction DDPM and a segmenter fitted on its features."""

import pytest

from sklearn_ddpm.backbone import Backbone, tiny_unet
from tests.conftest import make_squares


@pytest.fixture(scope="session")
def tiny_ddpm():
    """A ~0.6 M-parameter UNet at 32² predicting ε only (3 output channels), as DDPMs trained here do."""
    return Backbone(tiny_unet(out_channels=3), source="tiny_ddpm")


@pytest.fixture(scope="session")
def squares_32():
    return make_squares(n_images=6, size=(32, 32), seed=0)


@pytest.fixture(scope="session")
def tiny_segmenter(tiny_ddpm, squares_32):
    from sklearn_ddpm import make_segmenter

    images, masks = squares_32
    segmenter = make_segmenter(tiny_ddpm, blocks=(3, 6), steps=(50,), n_estimators=3, max_epochs=3,
                               max_pixels_per_image=200, max_pixels_per_class=None, min_class_pixels=0)
    return segmenter.fit(images, masks)
