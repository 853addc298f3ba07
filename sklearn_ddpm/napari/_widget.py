"""The dock widget: a thin view on :class:`~sklearn_ddpm.interactive.InteractiveSegmenter`.

The widget only moves data between napari layers and the session object: it copies the painted
Labels layers into the session (:func:`~sklearn_ddpm.interactive.napari_to_mask`), runs the
session's ``fit`` / ``predict_with_uncertainty`` / ``suggest`` in a worker thread
(:func:`napari.qt.threading.create_worker`, so the viewer never freezes), and writes what comes
back into layers. Every decision about segmentation is the session's.

Layers it makes, per image layer ``NAME`` (each tagged in ``layer.metadata``):
``NAME labels`` (paint here: 0 = unlabelled, ``k + 1`` = class ``k``), ``NAME prediction``
(same colours), ``NAME uncertainty`` (the members' Jensen-Shannon divergence, scale 0..log M) and
``NAME suggestions`` (boxes around the regions to label next, best first).
"""

import inspect
import math
from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..features._presets import FEATURE_PRESETS
from ..interactive import InteractiveSegmenter, napari_to_mask
from ..io import MODEL_SUFFIX
from ._layers import (
    DEFAULT_COLORS,
    ROLE_KEY,
    SOURCE_KEY,
    label_color_dict,
    label_planes,
    labels_shape,
    split_image_layer,
    stack_planes,
    suggestion_rectangle,
)

#: Backbone choices: label shown -> what the path box must hold ("" = nothing).
BACKBONES = {"bundled horse DDPM": "", "diffusers folder": "folder", "guided-diffusion .pt file": "file"}
ALL_IMAGES = "all image layers"
#: File dialog filters: the model file ``sklearn-ddpm fit`` writes (older joblib pickles are refused
#: unless trusted, so the open dialog shows only the model files unless asked for all files).
SAVE_FILTER = f"sklearn-ddpm model (*{MODEL_SUFFIX})"
LOAD_FILTER = f"sklearn-ddpm model (*{MODEL_SUFFIX});;All files (*)"


class SegmenterWidget(QWidget):
    """Paint a few strokes, fit, see the prediction and its uncertainty, correct, save, apply to a folder.

    napari opens it from *Plugins > Interactive segmentation* (the npe2 manifest passes the
    viewer).

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    segmenter : InteractiveSegmenter or None
        The session behind the widget; None until the first fit (or after a setting that changes
        the features: backbone, preset, number of classes).

    Examples
    --------
    >>> import napari
    >>> from sklearn_ddpm.napari._widget import SegmenterWidget
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> widget = SegmenterWidget(viewer)  # doctest: +SKIP
    >>> viewer.window.add_dock_widget(widget, name="Interactive segmentation")  # doctest: +SKIP
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.segmenter = None
        self._entries = {}  # image layer -> (session indices, stacked) in the current session
        self._worker = None
        self._refit_pending = False
        self._build()
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()
        self._ensure_labels_layers()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self):
        layout = QVBoxLayout(self)

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        self.backbone_combo = QComboBox()
        self.backbone_combo.addItems(list(BACKBONES))
        self.backbone_path = QLineEdit()
        self.backbone_path.setPlaceholderText("folder or .pt file")
        self.backbone_browse = QPushButton("Browse…")
        row = QHBoxLayout()
        row.addWidget(self.backbone_path)
        row.addWidget(self.backbone_browse)
        form.addRow("Backbone", self.backbone_combo)
        form.addRow("", row)
        self.preset_combo = QComboBox()
        for name in FEATURE_PRESETS:
            self.preset_combo.addItem(name)
            missing = preset_arguments(name)[1]
            if missing:
                # Shown, not silently changed: the session cannot take these parameters yet.
                index = self.preset_combo.count() - 1
                self.preset_combo.model().item(index).setEnabled(False)
                self.preset_combo.setItemData(index, f"needs {', '.join(missing)}, which InteractiveSegmenter "
                                              "does not take", Qt.ItemDataRole.ToolTipRole)
        form.addRow("Features", self.preset_combo)
        layout.addWidget(model_box)

        class_box = QGroupBox("Classes (paint class k as label k + 1)")
        class_layout = QVBoxLayout(class_box)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setHorizontalHeaderLabels(["name", "colour"])
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.horizontalHeader().setStretchLastSection(True)
        self.class_table.setMaximumHeight(130)
        class_layout.addWidget(self.class_table)
        row = QHBoxLayout()
        self.add_class_button = QPushButton("Add class")
        self.remove_class_button = QPushButton("Remove last")
        row.addWidget(self.add_class_button)
        row.addWidget(self.remove_class_button)
        class_layout.addLayout(row)
        layout.addWidget(class_box)

        image_box = QGroupBox("Images")
        form = QFormLayout(image_box)
        self.images_combo = QComboBox()
        self.open_folder_button = QPushButton("Open folder…")
        form.addRow("Segment", self.images_combo)
        form.addRow("", self.open_folder_button)
        layout.addWidget(image_box)

        fit_box = QGroupBox("Label, fit, correct")
        fit_layout = QVBoxLayout(fit_box)
        row = QHBoxLayout()
        self.fit_button = QPushButton("Fit")
        self.live_check = QCheckBox("live (refit after each stroke)")
        row.addWidget(self.fit_button)
        row.addWidget(self.live_check)
        fit_layout.addLayout(row)
        row = QHBoxLayout()
        self.suggest_button = QPushButton("Suggest where to label")
        self.suggest_count = QSpinBox()
        self.suggest_count.setRange(1, 50)
        self.suggest_count.setValue(5)
        row.addWidget(self.suggest_button)
        row.addWidget(self.suggest_count)
        fit_layout.addLayout(row)
        layout.addWidget(fit_box)

        file_box = QGroupBox("Model file")
        file_layout = QVBoxLayout(file_box)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save model…")
        self.load_button = QPushButton("Load model…")
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        file_layout.addLayout(row)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply to folder…")
        self.overlay_check = QCheckBox("with overlays")
        row.addWidget(self.apply_button)
        row.addWidget(self.overlay_check)
        file_layout.addLayout(row)
        layout.addWidget(file_box)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Paint a few strokes of each class in a labels layer, then Fit.")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.set_classes(["background", "foreground"])
        self._on_backbone_changed()
        self.backbone_combo.currentIndexChanged.connect(self._on_backbone_changed)
        self.backbone_path.textChanged.connect(self._reset_session)
        self.backbone_browse.clicked.connect(self._browse_backbone)
        self.preset_combo.currentIndexChanged.connect(self._reset_session)
        self.class_table.itemChanged.connect(self._on_class_names_changed)
        self.add_class_button.clicked.connect(self._add_class)
        self.remove_class_button.clicked.connect(self._remove_class)
        self.images_combo.currentIndexChanged.connect(self._ensure_labels_layers)
        self.open_folder_button.clicked.connect(self._choose_folder_to_open)
        self.fit_button.clicked.connect(self.fit)
        self.suggest_button.clicked.connect(self.suggest)
        self.save_button.clicked.connect(self._choose_save_path)
        self.load_button.clicked.connect(self._choose_model_to_load)
        self.apply_button.clicked.connect(self._choose_folders_to_apply)

    # -- settings ----------------------------------------------------------------------------------
    @property
    def class_names(self):
        """The class names of the table, class 0 first."""
        return [self.class_table.item(r, 0).text().strip() or f"class {r}" for r in range(self.class_table.rowCount())]

    @property
    def class_colors(self):
        """The class colours of the table, ``#rrggbb``."""
        return [self.class_table.cellWidget(r, 1).property("color") for r in range(self.class_table.rowCount())]

    def set_classes(self, names, colors=None):
        """Replace the classes: their names and (optionally) ``#rrggbb`` colours."""
        colors = list(colors or [DEFAULT_COLORS[k % len(DEFAULT_COLORS)] for k in range(len(names))])
        if len(colors) != len(names):
            raise ValueError(f"{len(colors)} colours for {len(names)} classes.")
        self.class_table.blockSignals(True)
        self.class_table.setRowCount(0)
        for name, color in zip(names, colors):
            self._append_class_row(name, color)
        self.class_table.blockSignals(False)
        self._on_classes_changed(count_changed=True)

    def _append_class_row(self, name, color):
        row = self.class_table.rowCount()
        self.class_table.insertRow(row)
        self.class_table.setItem(row, 0, QTableWidgetItem(name))
        button = QPushButton()
        button.clicked.connect(lambda _=False, b=button: self._pick_color(b))
        self._paint_color_button(button, color)
        self.class_table.setCellWidget(row, 1, button)

    @staticmethod
    def _paint_color_button(button, color):
        button.setProperty("color", color)
        button.setText(color)
        button.setStyleSheet(f"background-color: {color};")

    def _pick_color(self, button):
        color = QColorDialog.getColor(QColor(button.property("color")), self, "Class colour")
        if color.isValid():
            self._paint_color_button(button, color.name())
            self._on_classes_changed(count_changed=False)

    def _add_class(self):
        k = self.class_table.rowCount()
        self.class_table.blockSignals(True)
        self._append_class_row(f"class {k}", DEFAULT_COLORS[k % len(DEFAULT_COLORS)])
        self.class_table.blockSignals(False)
        self._on_classes_changed(count_changed=True)

    def _remove_class(self):
        if self.class_table.rowCount() > 2:
            self.class_table.removeRow(self.class_table.rowCount() - 1)
            self._on_classes_changed(count_changed=True)

    def _on_class_names_changed(self, item=None):
        self._on_classes_changed(count_changed=False)

    def _on_classes_changed(self, count_changed):
        if count_changed:
            self._reset_session()  # the ensemble's number of outputs is fixed when the session starts
        elif self.segmenter is not None:
            self.segmenter.class_names = self.class_names
        colormap = DirectLabelColormap(color_dict=label_color_dict(self.class_colors))
        for layer in self.viewer.layers:
            if layer.metadata.get(ROLE_KEY) in ("labels", "prediction"):
                layer.colormap = colormap

    def _on_backbone_changed(self):
        needs_path = BACKBONES[self.backbone_combo.currentText()]
        self.backbone_path.setEnabled(bool(needs_path))
        self.backbone_browse.setEnabled(bool(needs_path))
        self._reset_session()

    def _browse_backbone(self):
        if BACKBONES[self.backbone_combo.currentText()] == "folder":
            path = QFileDialog.getExistingDirectory(self, "Diffusers model folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Guided-diffusion checkpoint", "", "Checkpoint (*.pt)")
        if path:
            self.backbone_path.setText(path)
            self._reset_session()

    def _model_argument(self):
        """What ``InteractiveSegmenter(model=...)`` gets: None (bundled) or the chosen path."""
        kind = BACKBONES[self.backbone_combo.currentText()]
        if not kind:
            return None
        path = self.backbone_path.text().strip()
        if not path:
            raise ValueError(f"choose the backbone's {'folder' if kind == 'folder' else '.pt file'} (Browse…).")
        return path

    def _reset_session(self, *_):
        """Forget the session (its features depend on the backbone, the preset and the classes)."""
        if self.segmenter is not None:
            self.segmenter, self._entries = None, {}
            self._set_status("Settings changed: the features are computed again at the next fit.")

    # -- images and their layers -------------------------------------------------------------------
    def _image_layers(self):
        """The viewer's image layers that hold images to segment (not the widget's own layers)."""
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and ROLE_KEY not in layer.metadata]

    def _scope_layers(self):
        """The image layers the widget works on: the chosen one, or all."""
        layers = self._image_layers()
        chosen = self.images_combo.currentText()
        return layers if chosen == ALL_IMAGES else [layer for layer in layers if layer.name == chosen]

    def _on_layers_changed(self, event=None):
        names = [layer.name for layer in self._image_layers()]
        current = self.images_combo.currentText()
        self.images_combo.blockSignals(True)
        self.images_combo.clear()
        self.images_combo.addItems([ALL_IMAGES] + names)
        self.images_combo.setCurrentIndex(max(0, self.images_combo.findText(current)))
        self.images_combo.blockSignals(False)
        self._entries = {layer: entry for layer, entry in self._entries.items() if layer in self.viewer.layers}

    def _on_layer_inserted(self, event):
        self._on_layers_changed()
        if event.value in self._image_layers():
            # Only a new image gets a labels layer at once: one deleted by hand (or by closing the
            # viewer) comes back at the next fit, not in the middle of a removal.
            self._ensure_labels_layers()

    def _ensure_labels_layers(self, *_):
        """A labels layer to paint on for every image layer in scope."""
        for image_layer in self._scope_layers():
            if self.companion(image_layer, "labels") is None:
                shape = labels_shape(image_layer.data, image_layer.rgb)
                layer = self._add_labels_layer(image_layer, "labels", np.zeros(shape, np.int32), opacity=0.7)
                layer.events.paint.connect(self._on_stroke)
                layer.brush_size = 5
                layer.selected_label = 1

    def companion(self, image_layer, role):
        """The layer of ``role`` ("labels", "prediction", "uncertainty", "suggestions") made for ``image_layer``."""
        for layer in self.viewer.layers:
            if layer.metadata.get(ROLE_KEY) == role and layer.metadata.get(SOURCE_KEY) == image_layer.name:
                return layer
        return None

    def _add_labels_layer(self, image_layer, role, data, **kwargs):
        return self.viewer.add_labels(
            data, name=f"{image_layer.name} {role}", metadata={ROLE_KEY: role, SOURCE_KEY: image_layer.name},
            colormap=DirectLabelColormap(color_dict=label_color_dict(self.class_colors)), **kwargs)

    def open_folder(self, folder):
        """Open a folder's images: one stack layer if they share a size, else one layer per image.

        Parameters
        ----------
        folder : str or path-like

        Returns
        -------
        list of napari.layers.Image
        """
        from ..datasets import list_images, read_image

        paths = list_images(folder, argument="the folder to open")
        images = [read_image(path) for path in paths]
        if len({image.shape for image in images}) == 1:
            layers = [self.viewer.add_image(np.stack(images), name=Path(folder).name, rgb=True)]
        else:
            layers = [self.viewer.add_image(image, name=path.stem, rgb=True, visible=i == 0)
                      for i, (image, path) in enumerate(zip(images, paths))]
        self.images_combo.setCurrentText(layers[0].name if len(layers) == 1 else ALL_IMAGES)
        self._ensure_labels_layers()
        return layers

    def _choose_folder_to_open(self):
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            try:
                self.open_folder(folder)
            except (OSError, ValueError) as exc:
                self._report_error(exc)

    # -- the session -------------------------------------------------------------------------------
    def _session(self):
        """The session, made if needed, holding every image in scope and the painted labels."""
        if self.segmenter is None:
            self.segmenter = InteractiveSegmenter(
                self._model_argument(), class_names=self.class_names, **preset_arguments(self.preset_combo.currentText())[0])
            self._entries = {}
        seg = self.segmenter
        self._ensure_labels_layers()
        for image_layer in self._scope_layers():
            if image_layer not in self._entries:
                images, stacked = split_image_layer(image_layer.data, image_layer.rgb)
                names = [image_layer.name] if not stacked else [f"{image_layer.name}[{j}]" for j in range(len(images))]
                self._entries[image_layer] = (seg.add_images(images, names=names), stacked)
            indices, stacked = self._entries[image_layer]
            labels = self.companion(image_layer, "labels")
            if labels is not None:
                for index, plane in zip(indices, label_planes(labels.data, stacked)):
                    seg.set_labels(index, napari_to_mask(plane))
        return seg

    @property
    def busy(self):
        """Whether a worker thread is running (fit, suggestions, prediction or a folder)."""
        return self._worker is not None

    def fit(self):
        """Copy the painted labels into the session, fit it and show the prediction (in a worker thread).

        While a fit runs, a new stroke (live mode) or click queues one more fit, started when it
        ends with the labels of that moment.
        """
        if self.busy:
            self._refit_pending = True
            return
        try:
            seg = self._session()
        except (OSError, ValueError) as exc:
            self._report_error(exc)
            return
        work = _fit_and_predict(seg, [i for indices, _ in self._entries.values() for i in indices])
        self._start(work, self._show_predictions, f"Fitting on {seg.n_labelled_pixels:,} labelled pixels…")

    def _on_stroke(self, event=None):
        if not self.live_check.isChecked():
            return
        painted = set()
        for image_layer in self._scope_layers():
            labels = self.companion(image_layer, "labels")
            if labels is not None:
                painted.update(np.unique(labels.data).tolist())
        if len(painted - {0}) < 2:
            self._set_status("Live: paint a stroke of another class; fitting starts with two classes.")
            return
        self.fit()

    def _show_predictions(self, result):
        self._write_prediction_layers(*result)
        seg = result[1]
        self._set_status(f"Fit {seg.n_fits_}: {seg.n_labelled_pixels:,} labelled pixels in "
                         f"{len(seg.labelled_images)} images, {seg.fit_seconds_:.1f} s. Paint where it is wrong.")

    def _write_prediction_layers(self, outputs, seg):
        colormap_scale = math.log(seg.n_estimators) if seg.n_estimators > 1 else 1.0
        for image_layer, (indices, stacked) in self._entries.items():
            if image_layer not in self.viewer.layers or not all(i in outputs for i in indices):
                continue
            prediction = stack_planes([outputs[i][0].astype(np.int32) + 1 for i in indices], stacked)
            uncertainty = stack_planes([outputs[i][1].astype(np.float32) for i in indices], stacked)
            layer = self.companion(image_layer, "prediction")
            if layer is None:
                self._add_labels_layer(image_layer, "prediction", prediction, opacity=0.45)
            else:
                layer.data = prediction
            layer = self.companion(image_layer, "uncertainty")
            if layer is None:
                self.viewer.add_image(
                    uncertainty, name=f"{image_layer.name} uncertainty", colormap="inferno", blending="additive",
                    contrast_limits=(0.0, colormap_scale), opacity=0.6, visible=False,
                    metadata={ROLE_KEY: "uncertainty", SOURCE_KEY: image_layer.name})
            else:
                layer.data = uncertainty
            # Keep the painted strokes on top, and selected, so the next stroke goes where it should.
            labels = self.companion(image_layer, "labels")
            if labels is not None:
                self.viewer.layers.move(self.viewer.layers.index(labels), len(self.viewer.layers))
        labels = [self.companion(layer, "labels") for layer in self._scope_layers()]
        if labels and labels[0] is not None:
            self.viewer.layers.selection.active = labels[0]

    def suggest(self):
        """Outline the regions where the ensemble's members disagree most (where to label next)."""
        if self.busy or self.segmenter is None or not hasattr(self.segmenter, "pipeline_"):
            self._set_status("Fit a model first: the suggestions come from its members' disagreement.")
            return
        seg, k = self.segmenter, self.suggest_count.value()
        self._start(_suggest(seg, k), self._show_suggestions, f"Looking for the {k} most uncertain regions…")

    def _show_suggestions(self, suggestions):
        where = {i: (image_layer, j, stacked) for image_layer, (indices, stacked) in self._entries.items()
                 for j, i in enumerate(indices)}
        for image_layer in self._entries:
            layer = self.companion(image_layer, "suggestions")
            if layer is not None:
                self.viewer.layers.remove(layer)
        by_layer = {}
        for rank, suggestion in enumerate(suggestions, 1):
            if suggestion.image in where:
                image_layer, plane, stacked = where[suggestion.image]
                by_layer.setdefault(image_layer, []).append(
                    (suggestion_rectangle(suggestion.bbox, plane, stacked), rank, suggestion.score))
        for image_layer, found in by_layer.items():
            self.viewer.add_shapes(
                [corners for corners, _, _ in found], shape_type="rectangle", name=f"{image_layer.name} suggestions",
                edge_color="yellow", face_color="transparent", edge_width=2,
                features={"rank": [rank for _, rank, _ in found], "score": [score for _, _, score in found]},
                text={"string": "{rank}", "color": "yellow", "anchor": "upper_left"},
                metadata={ROLE_KEY: "suggestions", SOURCE_KEY: image_layer.name})
        self._set_status(f"{len(suggestions)} regions to label next (yellow boxes, 1 = most uncertain)."
                         if suggestions else "No uncertain region found.")

    # -- model files and folders -------------------------------------------------------------------
    def save_model(self, path):
        """Write the last fitted model as ``sklearn-ddpm fit`` does (for ``predict``, Dask, the Python API)."""
        if self.segmenter is None or not hasattr(self.segmenter, "pipeline_"):
            raise ValueError("there is no fitted model to save: paint and Fit first.")
        path = self.segmenter.save(path)
        stale = " (strokes painted since the last fit are not in it)" if self.segmenter.needs_fit else ""
        self._set_status(f"Saved the model to {path}{stale}.")
        return path

    def load_model(self, path):
        """Continue from a model file: predict the images in scope with it; Fit retrains it on the strokes."""
        if self.busy:
            raise RuntimeError("wait for the running job to end before loading a model.")
        seg = InteractiveSegmenter.load(path)
        names = seg.class_names_
        colors = (self.class_colors + [DEFAULT_COLORS[k % len(DEFAULT_COLORS)] for k in range(len(names))])[:len(names)]
        self.set_classes(names, colors)
        # set_classes forgot the old session; the loaded one takes its place with its own backbone and features.
        self.segmenter, self._entries = seg, {}
        for image_layer in self._scope_layers():
            images, stacked = split_image_layer(image_layer.data, image_layer.rgb)
            self._entries[image_layer] = (seg.add_images(images), stacked)
        indices = [i for indices, _ in self._entries.values() for i in indices]
        self._start(_predict(seg, indices), self._show_loaded_predictions, f"Loaded {Path(path).name}; predicting…")
        return seg

    def _show_loaded_predictions(self, result):
        self._write_prediction_layers(*result)
        self._set_status("Loaded model: its predictions are shown; Fit retrains it on the painted strokes.")

    def apply_to_folder(self, input_folder, output_folder):
        """Segment every image of a folder with the fitted model; label PNGs as ``sklearn-ddpm predict`` writes them."""
        from ..datasets import list_images

        if self.busy:
            raise RuntimeError("wait for the running job to end before applying the model.")
        if self.segmenter is None or not hasattr(self.segmenter, "pipeline_"):
            raise ValueError("there is no fitted model to apply: paint and Fit (or load a model) first.")
        paths = list_images(input_folder, argument="the folder to segment")
        work = _apply(self.segmenter.pipeline_, self.segmenter.class_names_, paths, output_folder,
                      self.overlay_check.isChecked())
        self._start(work, self._show_applied, f"Segmenting {len(paths)} images…")

    def _show_applied(self, result):
        summary, out = result
        self.last_summary = summary
        self._set_status(summary.report(out) + "".join(f"\n{name}: {error}" for name, error in summary.failed[:3]))

    def _choose_save_path(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save model", f"segmenter{MODEL_SUFFIX}", SAVE_FILTER)
        if path:
            # Qt's own (non-native) dialog returns the typed name as is: give it the model file's suffix.
            path = path if Path(path).suffix else path + MODEL_SUFFIX
            self._guarded(self.save_model, path)

    def _choose_model_to_load(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", LOAD_FILTER)
        if path:
            self._guarded(self.load_model, path)

    def _choose_folders_to_apply(self):
        source = QFileDialog.getExistingDirectory(self, "Folder of images to segment")
        if not source:
            return
        target = QFileDialog.getExistingDirectory(self, "Folder for the label PNGs")
        if target:
            self._guarded(self.apply_to_folder, source, target)

    # -- workers and reporting ---------------------------------------------------------------------
    def _start(self, generator, on_result, message):
        """Run ``generator`` in a worker thread: it yields ``(done, total, message)`` and returns the result."""
        self._set_busy(True)
        self._set_status(message)
        self.progress.setRange(0, 0)  # busy until the first (done, total) arrives
        # Our own "errored" handler: the error is shown in the widget and as a notification, not re-raised.
        self._worker = create_worker(
            lambda: (yield from generator), _start_thread=True,
            _connect={"yielded": self._on_progress, "returned": on_result, "errored": self._report_error,
                      "finished": self._on_finished})

    def _on_progress(self, update):
        done, total, message = update
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if message:
            self._set_status(message)

    def _on_finished(self):
        self._worker = None
        self._set_busy(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if self._refit_pending:
            self._refit_pending = False
            self.fit()

    def _set_busy(self, busy):
        for widget in (self.fit_button, self.suggest_button, self.save_button, self.load_button, self.apply_button,
                       self.backbone_combo, self.backbone_path, self.backbone_browse, self.preset_combo,
                       self.add_class_button, self.remove_class_button, self.open_folder_button):
            widget.setEnabled(not busy)
        if not busy:
            self._on_backbone_changed_enable()

    def _on_backbone_changed_enable(self):
        needs_path = bool(BACKBONES[self.backbone_combo.currentText()])
        self.backbone_path.setEnabled(needs_path)
        self.backbone_browse.setEnabled(needs_path)

    def _guarded(self, action, *args):
        try:
            return action(*args)
        except (OSError, ValueError, RuntimeError) as exc:
            self._report_error(exc)

    def _report_error(self, exc):
        message = f"{type(exc).__name__}: {exc}"
        self._set_status(message)
        show_error(message)

    def _set_status(self, text):
        self.status.setText(text)


def preset_arguments(name):
    """The ``InteractiveSegmenter`` arguments of feature preset ``name``, and the preset's parameters it cannot take.

    A preset parameter the session does not take is dropped when it equals the feature
    transformer's default (the session uses that default anyway); any other is listed as
    unsupported, and the widget disables the preset rather than run it differently.

    Returns
    -------
    arguments : dict
    unsupported : list of str
    """
    from ..features import DDPMFeatureTransformer

    taken = inspect.signature(InteractiveSegmenter).parameters
    defaults = inspect.signature(DDPMFeatureTransformer).parameters
    arguments, unsupported = {}, []
    for key, value in FEATURE_PRESETS[name].items():
        if key in taken:
            arguments[key] = value
        elif not (key in defaults and defaults[key].default == value):
            unsupported.append(key)
    return arguments, sorted(unsupported)


# -- the worker threads' work: generators of (done, total, message), returning the result ----------
def _fit_and_predict(seg, indices):
    yield 0, 0, None
    seg.fit()
    result = yield from _predictions(seg, indices)
    return result


def _predict(seg, indices):
    result = yield from _predictions(seg, indices)
    return result


def _predictions(seg, indices):
    outputs = {}
    for done, i in enumerate(indices):
        yield done, len(indices), f"Predicting image {done + 1} of {len(indices)}…"
        outputs[i] = seg.predict_with_uncertainty(i)
    return outputs, seg


def _suggest(seg, k):
    yield 0, 0, None
    return seg.suggest(k=k)


def _apply(pipeline, class_names, paths, out, overlay):
    from .._outputs._predicting import predict_and_write, start_run

    writer, todo, summary = start_run(pipeline, paths, out, overlay=overlay, uncertainty=False,
                                      class_names=class_names, resume=False)
    step = max(1, pipeline[0].forward_batch_size())
    for start in range(0, len(todo), step):
        yield start, len(todo), f"Segmenting images {start + 1}-{min(start + step, len(todo))} of {len(todo)}…"
        summary.update(predict_and_write(pipeline, todo[start:start + step], writer))
    yield len(todo), len(todo), None
    return summary, out
