"""One image's prediction as OME-Zarr: opens with zarr and ome-zarr, class names in the metadata, atomic."""

import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm._outputs._zarr import write_zarr_prediction
from sklearn_ddpm.plotting import label_palette

from ..conftest import make_squares

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")


@pytest.fixture(scope="module")
def fitted(tiny_backbone):
    images, masks = make_squares(4, (70, 90))
    transformer = DDPMFeatureTransformer(tiny_backbone, blocks=(3, 6), steps=(50,), tile="auto").fit()
    features = transformer.transform(images)
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0, predict_batch_size=500).fit(features,
                                                                                                          masks)
    return images, features, clf


def _bands(clf, features):
    return ((top, bottom, out) for _, top, bottom, out in clf.predict_bands(features[:1]))


def test_store_holds_labels_probabilities_and_uncertainty(fitted, tmp_path):
    images, features, clf = fitted
    names = ["background", "square"]
    path = write_zarr_prediction(tmp_path / "a.ome.zarr", images[0], _bands(clf, features), names,
                                 label_palette()[:2], probabilities=True, chunk=32)
    labels, uncertainty = clf.predict_with_uncertainty(features[:1])
    probabilities = clf.predict_proba(features[:1])
    root = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(root["labels/classes/0"][:], labels[0])
    np.testing.assert_allclose(root["uncertainty/0"][:], uncertainty[0], atol=1e-6)
    np.testing.assert_allclose(root["probabilities/0"][:], np.moveaxis(probabilities[0], -1, 0), atol=1e-3)  # float16
    np.testing.assert_array_equal(root["0"][:], np.moveaxis(images[0], -1, 0))

    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    # OME-Zarr 0.5 keeps its metadata under "ome": the channels' names are where readers look
    ome = root["probabilities"].attrs["ome"]
    assert [c["label"] for c in ome["omero"]["channels"]] == names
    assert [c["color"] for c in root.attrs["ome"]["omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]

    nodes = list(Reader(parse_url(str(path / "labels" / "classes")))())
    label_node = nodes[0]
    properties = label_node.metadata.get("properties", {})
    assert {p.get("class") for p in properties.values()} == set(names)
    np.testing.assert_array_equal(np.asarray(label_node.data[0]), labels[0])


def test_an_interrupted_write_leaves_nothing(fitted, tmp_path):
    images, features, clf = fitted

    def interrupted():
        for k, band in enumerate(_bands(clf, features)):
            if k == 3:
                raise KeyboardInterrupt
            yield band

    with pytest.raises(KeyboardInterrupt):
        write_zarr_prediction(tmp_path / "b.ome.zarr", images[0], interrupted(), ["a", "b"], label_palette()[:2],
                              chunk=8)
    assert list(tmp_path.iterdir()) == []


def test_store_opens_in_napari_with_its_class_names(fitted, tmp_path):
    """What a user does with the store: open it in napari (the ``napari`` extra brings the OME-Zarr reader,
    napari-ome-zarr; napari's own reader finds no arrays in it). Qt-free: napari's viewer model."""
    pytest.importorskip("napari")
    pytest.importorskip("napari_ome_zarr")
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins

    images, features, clf = fitted
    names = ["background", "square"]
    path = write_zarr_prediction(tmp_path / "a.ome.zarr", images[0], _bands(clf, features), names,
                                 label_palette()[:2], chunk=32)
    _initialize_plugins()
    viewer = ViewerModel()
    viewer.open(str(path), plugin="napari-ome-zarr")
    labels = [layer for layer in viewer.layers if layer.__class__.__name__ == "Labels"]
    assert len(labels) == 1
    np.testing.assert_array_equal(np.asarray(labels[0].data[0] if labels[0].multiscale else labels[0].data),
                                  clf.predict(features[:1])[0])
    # the class names reach the layer as its features, one row per label value
    assert dict(zip(labels[0].features["index"], labels[0].features["class"])) == dict(enumerate(names))
    # the image: three channels shown red, green and blue over 0-255, not three grey ones
    images_ = [layer for layer in viewer.layers if layer.__class__.__name__ == "Image"]
    assert [layer.colormap.name for layer in images_] == ["red", "green", "blue"]
    assert all(tuple(layer.contrast_limits) == (0, 255) for layer in images_)
