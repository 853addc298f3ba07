"""label_samples and uncertainty_filter: pseudo-labels, the reference's filtering rule and its record."""

import json

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm.ensemble import uncertainty_score
from sklearn_ddpm.synthetic import PseudoLabels, label_samples, uncertainty_filter


def test_filter_drops_the_most_uncertain_fraction():
    scores = np.random.default_rng(0).random(400)
    kept = uncertainty_filter(scores)  # the reference's default: 10 %
    assert kept.sum() == 360
    assert scores[kept].max() < scores[~kept].min()
    assert uncertainty_filter(scores, drop_fraction=0.25).sum() == 300
    assert uncertainty_filter(scores, drop_fraction=0).all()
    # ties: a stable sort keeps the earlier sample
    assert uncertainty_filter([1.0, 1.0, 1.0, 0.0], drop_fraction=0.25).tolist() == [True, True, False, True]


def test_filter_with_the_reference_codes_window():
    scores = np.random.default_rng(1).random(1000)
    kept = uncertainty_filter(scores, drop_fraction=0.1, drop_most_certain=30)
    order = np.argsort(scores)
    k = int(len(scores) * 0.1)
    reference = order[30:-k + 30]  # DatasetGAN / DatasetDDPM train_deeplab.py
    assert np.array_equal(np.flatnonzero(kept), np.sort(reference))


@pytest.mark.parametrize("kwargs, match", [
    (dict(drop_fraction=1.0), "drop_fraction"),
    (dict(drop_fraction=0.1, drop_most_certain=2), "drop_most_certain"),
])
def test_filter_refuses_bad_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        uncertainty_filter(np.arange(10.0), **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        uncertainty_filter([0.1, np.nan])


def test_label_samples_writes_masks_and_the_record(tmp_path, tiny_segmenter, squares_32):
    images, _ = squares_32
    samples = tmp_path / "samples"
    samples.mkdir()
    for i, image in enumerate(list(images) + list(images[::-1, ::-1])):
        Image.fromarray(image).save(samples / f"sample_{i:06d}.png")
    pseudo = label_samples(tiny_segmenter, samples, progress=False)
    assert len(pseudo.image_paths) == 12 and pseudo.kept.sum() == 11  # int(12 * 0.1) = 1 dropped
    assert pseudo.uncertainty[~pseudo.kept][0] == pseudo.uncertainty.max()
    # every mask is the segmenter's prediction; every score the reference's, from the members' disagreement
    clf, features = tiny_segmenter[-1], tiny_segmenter[:-1].transform(images[:2])
    expected_labels, maps = clf.predict_with_uncertainty(features)
    for i in range(2):
        mask = np.asarray(Image.open(samples / "pseudo_labels" / f"sample_{i:06d}.png"))
        assert np.array_equal(mask, expected_labels[i])
        assert pseudo.uncertainty[i] == pytest.approx(float(uncertainty_score(__import__("torch").as_tensor(maps[i]))))
    record = json.loads(pseudo.record.read_text())
    assert record["rule"]["drop_fraction"] == 0.1 and record["rule"]["n_kept"] == 11
    assert [s["kept"] for s in record["samples"]] == pseudo.kept.tolist()
    assert not list((samples / "pseudo_labels").glob(".*"))  # no temporary files left
    read = PseudoLabels.read(samples / "pseudo_labels")
    assert np.array_equal(read.uncertainty, pseudo.uncertainty) and np.array_equal(read.kept, pseudo.kept)
    assert [p.resolve() for p in read.image_paths] == [p.resolve() for p in pseudo.image_paths]
    kept_images, kept_masks = read.load()
    assert len(kept_images) == len(kept_masks) == 11
    assert kept_images[0].shape == (32, 32, 3) and kept_masks[0].shape == (32, 32)


def test_label_samples_needs_an_ensemble(tmp_path, tiny_segmenter):
    from sklearn.pipeline import Pipeline
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="MLPEnsembleClassifier"):
        label_samples(Pipeline([("features", tiny_segmenter[0]), ("clf", LogisticRegression())]), tmp_path)
