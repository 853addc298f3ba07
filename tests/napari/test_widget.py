"""The napari dock widget, driven as a user would: images in, strokes painted, buttons clicked.

Every check compares the widget's layers with the same work done through
:class:`~sklearn_ddpm.interactive.InteractiveSegmenter` (the widget must add nothing of its own).
"""

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import load_segmenter
from sklearn_ddpm.interactive import InteractiveSegmenter, napari_to_mask
from sklearn_ddpm.napari._widget import SegmenterWidget, preset_arguments

from ..conftest import make_squares
from .conftest import line, stroke

TIMEOUT_MS = 120_000
CLASSES = ["background", "square"]


@pytest.fixture
def widget(make_napari_viewer, tiny_backbone_folder):
    """The widget docked in a viewer, set to the tiny backbone (the "diffusers folder" choice)."""
    viewer = make_napari_viewer()
    widget = SegmenterWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Interactive segmentation")
    widget.backbone_combo.setCurrentText("diffusers folder")
    widget.backbone_path.setText(str(tiny_backbone_folder))
    widget.class_table.item(1, 0).setText("square")  # typed into the class table
    return widget


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)


def api_session(folder, images, masks):
    """The same fit through the Python API: same backbone, preset, classes and seeds."""
    seg = InteractiveSegmenter(str(folder), class_names=CLASSES, **preset_arguments("paper")[0])
    seg.add_images(images)
    for i, mask in enumerate(masks):
        seg.set_labels(i, mask)
    return seg.fit()


def paint_squares(labels, masks, stacked):
    """Two strokes per image: one across the background (label 1), one inside the square (label 2)."""
    for j, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        cy, cx = int(ys.mean()), int(xs.mean())
        plane = j if stacked else None
        stroke(labels, line(2, 2, 2, 37), 1, plane)
        stroke(labels, line(cy, xs.min() + 2, cy, xs.max() - 2, n=4), 2, plane)


def test_paint_fit_matches_the_api(widget, qtbot, tiny_backbone_folder):
    images, masks = make_squares(n_images=3, size=(40, 40))
    viewer = widget.viewer
    image_layer = viewer.add_image(images, name="squares", rgb=True)
    labels = widget.companion(image_layer, "labels")
    assert labels is not None and labels.data.shape == (3, 40, 40)  # made when the images came in
    paint_squares(labels, masks[:2], stacked=True)  # the third image stays unlabelled

    widget.fit_button.click()
    assert widget.busy  # the fit runs in a worker thread: the click returned at once
    wait(qtbot, widget)

    assert "Error" not in widget.status.text(), widget.status.text()
    strokes = [napari_to_mask(plane) for plane in labels.data]
    seg = api_session(tiny_backbone_folder, list(images), strokes)
    prediction = widget.companion(image_layer, "prediction").data
    uncertainty = widget.companion(image_layer, "uncertainty").data
    for i in range(3):
        np.testing.assert_array_equal(prediction[i], seg.predict(i) + 1)  # napari: class k drawn as k + 1
        np.testing.assert_allclose(uncertainty[i], seg.uncertainty(i), rtol=1e-5, atol=1e-6)
    assert widget.segmenter.class_names == CLASSES
    assert widget.segmenter.n_labelled_pixels == sum(int((m != 255).sum()) for m in strokes) > 0
    # Strokes stay on top, selected, ready for the next correction.
    assert viewer.layers[-1] is labels and viewer.layers.selection.active is labels


def test_live_mode_refits_after_each_stroke(widget, qtbot, tiny_backbone_folder):
    images, masks = make_squares(n_images=1, size=(40, 40))
    image_layer = widget.viewer.add_image(images[0], name="one", rgb=True)
    labels = widget.companion(image_layer, "labels")
    widget.live_check.setChecked(True)
    stroke(labels, line(2, 2, 2, 37), 1)
    assert not widget.busy and "another class" in widget.status.text()  # one class: nothing to fit yet
    ys, xs = np.nonzero(masks[0])
    stroke(labels, line(int(ys.mean()), xs.min() + 2, int(ys.mean()), xs.max() - 2, n=4), 2)
    assert widget.busy  # the second class started a fit in a worker thread
    stroke(labels, line(38, 2, 38, 37), 1)  # a correction painted while it runs: one more fit, queued
    wait(qtbot, widget)
    assert widget.segmenter.n_fits_ == 2
    # The shown prediction is that of the last fit, on every stroke.
    seg = api_session(tiny_backbone_folder, [images[0]], [napari_to_mask(labels.data)])
    np.testing.assert_array_equal(widget.companion(image_layer, "prediction").data, seg.predict(0) + 1)


def test_suggestions_layer_shows_the_sessions_suggestions(widget, qtbot):
    images, masks = make_squares(n_images=2, size=(40, 40))
    image_layer = widget.viewer.add_image(images, name="squares", rgb=True)
    paint_squares(widget.companion(image_layer, "labels"), masks[:1], stacked=True)
    widget.fit_button.click()
    wait(qtbot, widget)
    widget.suggest_count.setValue(3)
    widget.suggest_button.click()
    wait(qtbot, widget)

    expected = widget.segmenter.suggest(k=3)
    shapes = widget.companion(image_layer, "suggestions")
    assert len(expected) > 0 and len(shapes.data) == len(expected)
    for corners, suggestion in zip(shapes.data, expected):
        y0, x0, y1, x1 = suggestion.bbox
        assert corners[0, 0] == suggestion.image  # the stack plane
        np.testing.assert_allclose(corners[:, 1:].min(0), [y0 - 0.5, x0 - 0.5])
        np.testing.assert_allclose(corners[:, 1:].max(0), [y1 - 0.5, x1 - 0.5])
    assert list(shapes.features["rank"]) == list(range(1, len(expected) + 1))


def test_save_load_and_apply_to_a_folder(widget, qtbot, make_napari_viewer, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    images, masks = make_squares(n_images=2, size=(40, 40))
    image_layer = widget.viewer.add_image(images, name="squares", rgb=True)
    paint_squares(widget.companion(image_layer, "labels"), masks, stacked=True)
    widget.fit_button.click()
    wait(qtbot, widget)
    prediction = widget.companion(image_layer, "prediction").data.copy()

    model_file = tmp_path / "seg.skddpm"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(model_file), ""))
    widget.save_button.click()
    # The file of `sklearn-ddpm fit`: load_segmenter reads it, with the class names typed in the widget.
    pipeline = load_segmenter(model_file)
    assert pipeline.class_names_ == CLASSES
    np.testing.assert_array_equal(np.stack(pipeline.predict(list(images))), prediction - 1)

    # Load it in a fresh viewer: the same predictions, before any stroke.
    other = SegmenterWidget(make_napari_viewer())
    other_layer = other.viewer.add_image(images, name="again", rgb=True)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model_file), ""))
    other.load_button.click()
    wait(qtbot, other)
    assert other.class_names == CLASSES
    np.testing.assert_array_equal(other.companion(other_layer, "prediction").data, prediction)

    # Apply to a folder: label PNGs as `sklearn-ddpm predict` writes them, with progress.
    folder, out = tmp_path / "new", tmp_path / "labels"
    folder.mkdir()
    new_images, _ = make_squares(n_images=3, size=(40, 40), seed=1)
    for k, image in enumerate(new_images):
        Image.fromarray(image).save(folder / f"img{k}.png")
    answers = iter([str(folder), str(out)])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: next(answers))
    other.apply_button.click()
    assert other.busy
    wait(qtbot, other)
    expected = other.segmenter.predict_images(list(new_images))
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"img{k}.png")), expected[k])
    assert other.progress.value() == other.progress.maximum()
    assert "Wrote predictions for 3 images" in other.status.text()


def test_file_dialogs_offer_the_model_file_of_sklearn_ddpm_fit(widget, qtbot, tmp_path, monkeypatch):
    """The dialogs filter on ``.skddpm`` (``sklearn-ddpm fit``'s file, not ``.joblib``); a typed name gets it."""
    from qtpy.QtWidgets import QFileDialog

    from sklearn_ddpm.io import MODEL_SUFFIX

    images, masks = make_squares(n_images=1, size=(40, 40))
    image_layer = widget.viewer.add_image(images[0], name="square", rgb=True)
    paint_squares(widget.companion(image_layer, "labels"), masks, stacked=False)
    widget.fit_button.click()
    wait(qtbot, widget)
    asked = {}

    def save_dialog(parent, caption, directory, file_filter, *args, **kwargs):
        asked["save"] = directory, file_filter
        return str(tmp_path / "seg"), file_filter  # typed without a suffix

    def open_dialog(parent, caption, directory, file_filter, *args, **kwargs):
        asked["open"] = file_filter
        return str(tmp_path / f"seg{MODEL_SUFFIX}"), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", open_dialog)
    widget.save_button.click()
    default_name, save_filter = asked["save"]
    assert default_name.endswith(MODEL_SUFFIX) and f"*{MODEL_SUFFIX}" in save_filter and "joblib" not in save_filter
    assert (tmp_path / f"seg{MODEL_SUFFIX}").is_file() and not (tmp_path / "seg").exists()
    widget.load_button.click()
    wait(qtbot, widget)
    assert asked["open"].startswith(f"sklearn-ddpm model (*{MODEL_SUFFIX})")
    assert widget.segmenter.n_fits_ == 0  # the loaded model's session


def test_images_of_different_sizes_in_their_own_layers(widget, qtbot, tmp_path, tiny_backbone_folder):
    small, small_mask = make_squares(n_images=1, size=(40, 40), seed=2)
    wide, wide_mask = make_squares(n_images=1, size=(40, 56), seed=3)
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(small[0]).save(folder / "a.png")
    Image.fromarray(wide[0]).save(folder / "b.png")
    layers = widget.open_folder(folder)  # sizes differ: one layer per image
    assert [layer.name for layer in layers] == ["a", "b"]
    assert widget.images_combo.currentText() == "all image layers"
    for layer, mask in zip(layers, (small_mask, wide_mask)):
        paint_squares(widget.companion(layer, "labels"), mask, stacked=False)
    widget.fit_button.click()
    wait(qtbot, widget)

    strokes = [napari_to_mask(widget.companion(layer, "labels").data) for layer in layers]
    seg = api_session(tiny_backbone_folder, [small[0], wide[0]], strokes)
    for i, layer in enumerate(layers):
        np.testing.assert_array_equal(widget.companion(layer, "prediction").data, seg.predict(i) + 1)


def test_errors_are_shown_not_raised(widget, qtbot):
    images, _ = make_squares(n_images=1, size=(40, 40))
    widget.viewer.add_image(images[0], name="one", rgb=True)
    widget.fit_button.click()  # nothing painted
    wait(qtbot, widget)
    assert "no labelled pixel" in widget.status.text()
    widget.suggest_button.click()  # nothing fitted
    assert "Fit a model first" in widget.status.text()
    widget.backbone_path.setText("")
    widget.fit_button.click()
    assert "choose the backbone's folder" in widget.status.text()


def test_settings(widget):
    # A preset the session cannot run as written is shown disabled, not run differently.
    for name, (_, unsupported) in ((n, preset_arguments(n)) for n in ("paper", "dift")):
        index = widget.preset_combo.findText(name)
        assert widget.preset_combo.model().item(index).isEnabled() == (not unsupported)
    # Class colours reach the labels layer: class k is label k + 1, 0 stays transparent.
    images, _ = make_squares(n_images=1, size=(40, 40))
    layer = widget.viewer.add_image(images[0], name="one", rgb=True)
    widget.set_classes(["sky", "tree", "rock"], ["#ff0000", "#00ff00", "#0000ff"])
    colormap = widget.companion(layer, "labels").colormap
    np.testing.assert_allclose(colormap.map(np.array([0, 1, 3])), [[0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 1]])
    assert widget.class_names == ["sky", "tree", "rock"]
