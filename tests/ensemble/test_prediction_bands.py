"""``MLPEnsembleClassifier.predict_bands``: a large image's outputs a band of rows at a time."""

import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm.ensemble import _bands
from sklearn_ddpm.postprocessing import GuidedFilter

from ..conftest import make_squares


@pytest.mark.parametrize("refine", [None, GuidedFilter(radius=3)])
def test_bands_equal_whole_image_prediction(tiny_backbone, refine, monkeypatch):
    # small refine blocks: the guided filter runs on several blocks of rows with their context
    monkeypatch.setattr(_bands, "REFINE_BLOCK_PIXELS", 800)
    images, masks = make_squares(4, (64, 80))
    features = DDPMFeatureTransformer(tiny_backbone, blocks=(3, 6, 9), steps=(50,)).fit_transform(images)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0, refine=refine,
                                predict_batch_size=300).fit(features, masks)
    labels, uncertainty = clf.predict_with_uncertainty(features[:2])
    probabilities = clf.predict_proba(features[:2])
    covered = np.zeros((2, 64), int)
    for i, top, bottom, out in clf.predict_bands(features[:2]):
        covered[i, top:bottom] += 1
        np.testing.assert_array_equal(out["labels"], labels[i, top:bottom])
        np.testing.assert_allclose(out["probabilities"], probabilities[i, top:bottom], atol=1e-6)
        np.testing.assert_allclose(out["uncertainty"], uncertainty[i, top:bottom], atol=1e-6)
    assert (covered == 1).all()
