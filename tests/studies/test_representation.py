import matplotlib.pyplot as plt
import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer, miou_score
from sklearn_ddpm.metrics import per_class_iou
from sklearn_ddpm.studies import block_step_sweep, class_size_groups, plot_block_step_heatmap


def test_class_size_groups_median_split():
    masks = [np.array([[0, 0, 0, 1, 2, 255]]), np.array([[0, 0, 1, 1, 0, 0]])]
    areas, small = class_size_groups(masks, n_classes=3)
    # image 1: 5 labelled pixels (3, 1, 1); image 2: 6 pixels (4, 2, 0)
    np.testing.assert_allclose(areas, [(3 / 5 + 4 / 6) / 2, (1 / 5 + 2 / 6) / 2, (1 / 5) / 2])
    assert small.tolist() == [False, False, True]
    _, small = class_size_groups(masks, n_classes=3, threshold=0.5)
    assert small.tolist() == [False, True, True]


def test_sweep_cell_equals_direct_fit(toy_data, unet, small_classifier):
    X_train, y_train, X_test, y_test = toy_data
    table = block_step_sweep(X_train, y_train, X_test, y_test, model=unet, blocks=(2, 7), steps=(50, 400),
                             classifier=small_classifier, random_state=3, progress=False)
    assert list(table[["block", "step"]].itertuples(index=False, name=None)) == [(2, 50), (2, 400), (7, 50), (7, 400)]
    assert table.miou.between(0, 1).all()

    # The (block 7, step 400) cell, recomputed without the sweep: its own transformer (no cache)
    # and a classifier with the same seed.
    direct = DDPMFeatureTransformer(unet, blocks=(7,), steps=(400,), memory=None, random_state=3).fit()
    clf = small_classifier.set_params(random_state=3, n_classes=3)
    clf.fit(direct.transform(X_train), y_train)
    prediction = clf.predict(direct.transform(X_test))
    cell = table.query("block == 7 and step == 400").iloc[0]
    assert cell.miou == pytest.approx(miou_score(y_test, prediction, n_classes=3), abs=1e-9)
    assert cell.n_features == direct.n_features_out_

    # Small/large columns average the per-class IoU of the groups measured on the training masks.
    iou = per_class_iou(y_test, prediction, n_classes=3)
    areas, small = class_size_groups(y_train, n_classes=3)
    assert small.tolist() == [False, False, True]
    assert cell.miou_small == pytest.approx(np.nanmean(iou[small]), abs=1e-9)
    assert cell.miou_large == pytest.approx(np.nanmean(iou[~small]), abs=1e-9)
    np.testing.assert_allclose(table.attrs["areas"], areas)

    fig = plot_block_step_heatmap(table)
    assert len(fig.axes) == 6  # three panels, three colour bars
    assert fig.axes[0].get_xlabel() == "diffusion step t"
    plt.close(fig)
