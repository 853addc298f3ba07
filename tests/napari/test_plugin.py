"""The plugin as napari finds it: the npe2 manifest, its entry point, its commands, its sample data."""

from importlib import metadata
from importlib.resources import files

import numpy as np
import pytest

from sklearn_ddpm.napari._layers import label_planes, labels_shape, split_image_layer, suggestion_rectangle


def test_manifest_is_registered_and_its_commands_import():
    from npe2 import PluginManager, PluginManifest

    manifest = PluginManifest.from_file(files("sklearn_ddpm.napari") / "napari.yaml")  # validates it
    entry_points = metadata.entry_points(group="napari.manifest")
    assert any(ep.name == "sklearn-ddpm" and ep.value == "sklearn_ddpm.napari:napari.yaml" for ep in entry_points)
    manager = PluginManager.instance()
    manager.discover()
    assert manager.get_manifest("sklearn-ddpm").name == manifest.name
    for command in manifest.contributions.commands:
        assert callable(_resolve(command.python_name))
    assert [w.display_name for w in manifest.contributions.widgets] == ["Interactive segmentation"]


def _resolve(python_name):
    import importlib

    module, name = python_name.split(":")
    return getattr(importlib.import_module(module), name)


def test_the_widget_opens_from_the_plugins_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("sklearn-ddpm", "Interactive segmentation")
    assert type(widget).__name__ == "SegmenterWidget"
    viewer.add_image(np.zeros((16, 16, 3), np.uint8), name="photo", rgb=True)  # the widget sees this viewer
    assert widget.images_combo.findText("photo") > 0 and "photo labels" in viewer.layers


def test_sample_data_opens_the_horses(make_napari_viewer):
    from sklearn_ddpm.datasets import load_horses

    viewer = make_napari_viewer()
    viewer.open_sample("sklearn-ddpm", "horses")
    train = load_horses("train")
    assert [layer.name for layer in viewer.layers] == train.names
    np.testing.assert_array_equal(viewer.layers[0].data, train.images[0])


def test_layer_shapes():
    rgb_stack = np.zeros((3, 8, 9, 3), np.uint8)
    images, stacked = split_image_layer(rgb_stack, rgb=True)
    assert stacked and len(images) == 3 and images[0].shape == (8, 9, 3)
    assert labels_shape(rgb_stack, rgb=True) == (3, 8, 9)
    assert split_image_layer(np.zeros((8, 9)), rgb=False)[1] is False
    assert len(label_planes(np.zeros((3, 8, 9)), stacked=True)) == 3
    with pytest.raises(ValueError, match="neither one image nor a stack"):
        split_image_layer(np.zeros((2, 3, 8, 9)), rgb=False)
    corners = suggestion_rectangle((1, 2, 4, 6), plane=2, stacked=True)
    np.testing.assert_array_equal(corners[:, 0], 2)
    np.testing.assert_array_equal(corners[:, 1:].min(0), [0.5, 1.5])
