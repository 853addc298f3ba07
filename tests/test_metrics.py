import numpy as np
import pytest

from sklearn_ddpm import miou_score, per_class_iou
from sklearn_ddpm.metrics import confusion_matrix_images


def test_miou_against_hand_computation():
    # image 1: class 0 I=2 (U=3), class 1 I=1 (U=2); image 2 adds class 1 I=2 U=2, class 2 I=0 U=1
    y_true = [np.array([[0, 0, 1], [0, 255, 1]]), np.array([[1, 1, 2]])]
    y_pred = [np.array([[0, 0, 0], [0, 2, 1]]), np.array([[1, 1, 1]])]
    # pixels: true0->pred0 x3, true1->pred0 x1, true1->pred1 x1, (255 skipped), true1->pred1 x2, true2->pred1 x1
    iou0 = 3 / (3 + 1)  # I=3, U = 3 true + 4 predicted - 3
    iou1 = 3 / (4 + 4 - 3)  # true1: 4 px, pred1: 4 px, I=3
    iou2 = 0 / 1
    ious = per_class_iou(y_true, y_pred)
    np.testing.assert_allclose(ious, [iou0, iou1, iou2])
    assert miou_score(y_true, y_pred) == pytest.approx(np.mean([iou0, iou1, iou2]))


def test_accumulates_over_images_not_averages_per_image():
    y_true = [np.array([[1, 1, 1, 1]]), np.array([[1, 0, 0, 0]])]
    y_pred = [np.array([[1, 1, 1, 1]]), np.array([[0, 0, 0, 0]])]
    # class 1: I = 4, U = 5 overall (per-image mean would be (1 + 0) / 2)
    assert per_class_iou(y_true, y_pred)[1] == pytest.approx(4 / 5)


def test_absent_classes_are_nan_and_skipped():
    ious = per_class_iou(np.array([[0, 2]]), np.array([[0, 2]]), n_classes=4)
    assert np.isnan(ious[1]) and np.isnan(ious[3])
    assert miou_score(np.array([[0, 2]]), np.array([[0, 2]]), n_classes=4) == 1.0


def test_confusion_matrix_and_errors():
    cm = confusion_matrix_images(np.array([0, 1, 1]), np.array([0, 0, 1]))
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="shape"):
        miou_score([np.zeros((2, 2))], [np.zeros((2, 3))])
    with pytest.raises(ValueError, match="images"):
        miou_score([np.zeros((2, 2))], [])
    with pytest.raises(ValueError, match="n_classes"):
        miou_score(np.array([0, 3]), np.array([0, 3]), n_classes=2)


def test_mean_iou_averages_the_present_classes():
    from sklearn_ddpm.metrics import mean_iou

    assert mean_iou(np.array([0.5, np.nan, 1.0])) == pytest.approx(0.75)
    assert mean_iou(np.array([np.nan, np.nan])) == 0.0  # nothing to score
    assert mean_iou(np.array([0.2, 0.4, 0.9]), exclude=[2]) == pytest.approx(0.3)
    assert mean_iou(np.array([0.2, 0.4]), exclude=[255]) == pytest.approx(0.3)  # outside the array: no effect
    y_true, y_pred = [np.array([[0, 1, 1, 3]])], [np.array([[0, 1, 0, 3]])]
    assert miou_score(y_true, y_pred) == mean_iou(per_class_iou(y_true, y_pred))
