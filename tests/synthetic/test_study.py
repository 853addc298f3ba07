"""synthetic_data_study / synthetic_table: the paper's Table 3 on a tiny DDPM."""

import json

import numpy as np
import pytest

from sklearn_ddpm import MLPEnsembleClassifier
from sklearn_ddpm.studies import SYNTHETIC_METHODS, synthetic_data_study, synthetic_table
from sklearn_ddpm.synthetic import SegmentationNetworkClassifier
from tests.conftest import make_squares


def test_study_returns_the_table(tmp_path, tiny_ddpm):
    X_train, y_train = make_squares(n_images=3, size=(32, 32), seed=0)
    X_test, y_test = make_squares(n_images=2, size=(40, 36), seed=1)
    classifier = MLPEnsembleClassifier(n_estimators=2, max_epochs=2, max_pixels_per_image=100, max_pixels_per_class=None,
                                       min_class_pixels=0)
    network = SegmentationNetworkClassifier(image_size=32, block_out_channels=(8, 16), max_epochs=1)
    runs = synthetic_data_study(
        X_train, y_train, X_test, y_test, sample_dir=tmp_path / "samples", n_samples=10, seeds=(0, 1),
        model=tiny_ddpm, blocks=(3, 6), steps=(50,), classifier=classifier, network=network,
        sampling_params=dict(num_inference_steps=2, batch_size=5), dataset="squares", progress=False)
    assert runs[["method", "seed"]].values.tolist() == [[m, s] for s in (0, 1) for m in SYNTHETIC_METHODS]
    assert runs.miou.between(0, 1).all() and (runs.images_per_second > 0).all()
    assert runs.n_train_images.tolist()[:3] == [3, 9, 9]  # 10 samples, the most uncertain one dropped
    for seed in (0, 1):  # each seed's ensemble labelled the samples into its own folder, with the record
        record = json.loads((tmp_path / "samples" / f"pseudo_labels_seed{seed}" / "pseudo_labels.json").read_text())
        assert record["rule"]["n_kept"] == 9
    table = synthetic_table(runs)
    assert table.index.tolist() == list(SYNTHETIC_METHODS) and table.columns.tolist() == ["squares"]
    real = 100 * runs[runs.method == SYNTHETIC_METHODS[0]].miou
    assert table.loc[SYNTHETIC_METHODS[0], "squares"] == f"{real.mean():.1f} ± {np.std(real, ddof=1):.1f}"
    # a rerun reuses the samples (no resampling), and a different dataset makes a second column
    again = synthetic_data_study(
        X_train, y_train, X_test, y_test, sample_dir=tmp_path / "samples", n_samples=10, seeds=(0,),
        model=tiny_ddpm, blocks=(3, 6), steps=(50,), classifier=classifier, network=network,
        sampling_params=dict(num_inference_steps=2, batch_size=5), dataset="again", progress=False)
    assert again.miou.tolist() == pytest.approx(runs[runs.seed == 0].miou.tolist())
    import pandas as pd

    assert synthetic_table(pd.concat([runs, again])).columns.tolist() == ["squares", "again"]
