"""Screenshot of the napari plugin on the bundled horses, from a real window: docs/images/napari_widget.png.

Run on a machine without a screen through Xvfb (Debian package ``xvfb``)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_napari_screenshot.py

It opens three bundled ``train`` horses, docks the widget (bundled horse DDPM, classes
"background" and "horse"), paints two strokes per image as a user would (one along the
background, one inside the horse, placed with the image's mask: a simulated annotator), clicks
Fit, waits for the worker thread and saves the whole window (canvas and dock) with
``viewer.screenshot(canvas_only=False)``.
"""

import argparse
import time
from pathlib import Path

import numpy as np


def horse_strokes(mask):
    """Two strokes in napari labels: background (label 1) across a top row, horse (label 2) along its middle row."""
    from scipy import ndimage

    strokes = np.zeros(mask.shape, np.int32)
    height, width = mask.shape
    inner = ndimage.binary_erosion(mask == 1, iterations=4)
    ys, _ = np.nonzero(inner)
    row = int(np.median(ys))
    strokes[row][inner[row]] = 2
    background = ndimage.binary_erosion(mask == 0, iterations=4)
    # Thin (one-pixel) strokes: every labelled pixel trains the ensemble, and fewer train faster.
    strokes[height // 12][background[height // 12]] = 1
    return strokes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(Path(__file__).parent / "images" / "napari_widget.png"))
    parser.add_argument("--images", type=int, default=3, help="horses to open and paint (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args()

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from sklearn_ddpm.datasets import load_horses
    from sklearn_ddpm.napari._widget import SegmenterWidget

    torch.set_num_threads(args.threads)
    train = load_horses("train")
    viewer = napari.Viewer(title="sklearn-ddpm: interactive segmentation")
    viewer.window._qt_window.resize(1500, 950)
    widget = SegmenterWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Interactive segmentation", area="right")
    widget.class_table.item(1, 0).setText("horse")
    layers = [viewer.add_image(image, name=name, rgb=True, visible=i == 0)
              for i, (image, name) in enumerate(zip(train.images[:args.images], train.names[:args.images]))]
    for layer, mask in zip(layers, train.masks):
        labels = widget.companion(layer, "labels")
        labels.data = horse_strokes(mask)
        labels.visible = layer.visible

    start = time.perf_counter()
    widget.fit_button.click()
    app = QApplication.instance()
    while widget.busy:
        app.processEvents()
        time.sleep(0.05)
    print(f"fit and predictions: {time.perf_counter() - start:.1f} s; status: {widget.status.text()}")
    for layer in viewer.layers:  # show the first horse only, with its strokes and prediction
        layer.visible = layer.name.startswith(layers[0].name) and not layer.name.endswith("uncertainty")
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(args.output, canvas_only=False, flash=False)
    print(f"wrote {args.output}")
    viewer.close()


if __name__ == "__main__":
    main()
