"""Issue 26 on the project's own data: an all-pixels fit with many declared classes must not predict NaN.

A user's default fit on every pixel of two face photos (19 declared classes) left half of the
first-layer units dead and gave NaN probabilities on a new photo: untrained classes were zeroed
after the softmax and the rest renormalised, 0 / 0 where an untrained class took all the mass.
Here the same happens on CCP photos (59 fine classes, about a dozen present), downscaled 4x so the
fit takes seconds; ``lr=1e-2`` stands in for the user's many more steps at 1e-3 (Adam moves every
weight by about ``lr`` a step, and the logits on new pixels grow with ``lr x steps``:
``benchmarks/results/nan_dead_units.json``).
"""

import numpy as np
import torch

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm.datasets import load_ccp_clothing


def _old_formula_nan_pixels(clf, features, i, shape):
    """Pixels of image ``i`` whose probabilities were NaN under the formula before issue 26's fix."""
    height, width = shape
    ys, xs = np.divmod(np.arange(height * width), width)
    module = clf.net_.module_.eval()
    with torch.no_grad():
        probabilities = torch.softmax(module(features.gather(np.full(len(ys), i), ys, xs).float()), -1)
    probabilities[..., torch.as_tensor(~clf.trained_classes_)] = 0
    probabilities /= probabilities.sum(-1, keepdim=True)
    return int(torch.isnan(probabilities).any(-1).any(-1).sum())


def test_all_pixels_of_ccp_photos_give_finite_probabilities(ccp_root):
    data = load_ccp_clothing(ccp_root, split="labeled_pool", coarse=False, n=8)
    images, masks = [im[::4, ::4] for im in data.images], [m[::4, ::4] for m in data.masks]
    transformer = DDPMFeatureTransformer(random_state=0)  # the bundled horse DDPM
    train, held_out = transformer.fit_transform(images[:2]), transformer.transform(images[2:])
    clf = MLPEnsembleClassifier(n_estimators=1, n_classes=59, max_pixels_per_class=None, lr=1e-2, max_epochs=4,
                                random_state=0).fit(train, masks[:2])
    # the conditions of the user's fit, checked so that this test cannot silently stop reproducing them
    assert (clf.net_.module_.norms[0].running_var < 1e-12).sum() > 0, "no dead first-layer units"
    old_nan = sum(_old_formula_nan_pixels(clf, held_out, i, m.shape) for i, m in enumerate(masks[2:]))
    assert old_nan > 0, "the old formula no longer gives NaN here: find another reproduction"

    probabilities = clf.predict_proba(held_out)
    labels = clf.predict(held_out)
    for p, predicted in zip(probabilities, labels):
        assert np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-5)
        assert (p[..., ~clf.trained_classes_] == 0).all()
        assert set(np.unique(predicted)) <= set(np.flatnonzero(clf.trained_classes_))
