"""What ``predict --format zarr|tiff`` writes for one image beyond the common case: a named class the
model was never fitted on, and the bar over a large image's rows."""

import numpy as np
import pytest

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
from sklearn_ddpm._outputs._predicting import predict_and_write, start_run
from sklearn_ddpm._outputs._progress import counted_rows

from ..conftest import make_squares

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")


@pytest.fixture(scope="module")
def skipping_class_1(tiny_backbone, tmp_path_factory):
    """A tiling pipeline fitted on classes 0 and 2 (none labelled 1), and one image file."""
    from PIL import Image
    from sklearn.pipeline import make_pipeline

    images, masks = make_squares(4, (70, 90))
    masks = [np.where(m == 1, 2, m) for m in masks]
    pipeline = make_pipeline(
        DDPMFeatureTransformer(tiny_backbone, blocks=(3, 6), steps=(50,), tile="auto"),
        MLPEnsembleClassifier(n_estimators=2, max_epochs=3, random_state=0, predict_batch_size=500))
    pipeline.fit(images, masks)
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(images[0]).save(folder / "square.png")
    return pipeline, folder / "square.png", images[0]


def test_zarr_probabilities_of_a_named_class_never_fitted_are_zero(skipping_class_1, tmp_path):
    pipeline, path, image = skipping_class_1
    assert pipeline[-1].classes_.tolist() == [0, 2]
    writer, todo, _ = start_run(pipeline, [path], tmp_path, overlay=False, uncertainty=False,
                                class_names=["background", "never labelled", "square"], resume=False, format="zarr",
                                probabilities=True)
    summary = predict_and_write(pipeline, todo, writer)
    assert summary.failed == [] and summary.written == ["square.png"]
    root = zarr.open_group(str(tmp_path / "square.ome.zarr"), mode="r")
    stored = root["probabilities/0"][:].astype(np.float32)
    assert stored.shape == (3, *image.shape[:2])
    want = np.moveaxis(pipeline.predict_proba([image])[0], -1, 0)  # channels of classes 0 and 2
    np.testing.assert_allclose(stored[[0, 2]], want, atol=2e-3)  # float16
    assert not stored[1].any()
    assert [c["label"] for c in root["probabilities"].attrs["ome"]["omero"]["channels"]] == [
        "background", "never labelled", "square"]
    np.testing.assert_array_equal(root["labels/classes/0"][:], pipeline.predict([image])[0])


def test_counted_rows_passes_the_bands_through_and_counts_their_rows(capsys):
    import time

    bands = [(0, 3, "a"), (3, 7, "b"), (7, 10, "c")]

    def slow():  # tqdm redraws at most every 0.1 s
        for band in bands:
            time.sleep(0.15)
            yield band

    assert list(counted_rows(slow(), 10, "big.tif", delay=0)) == bands
    err = capsys.readouterr().err
    assert "big.tif" in err and "3/10" in err and "7/10" in err
    assert list(counted_rows(iter(bands), 10, "big.tif", enabled=False, delay=0)) == bands
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("format", ["zarr", "tiff"])
def test_streaming_writers_draw_the_row_bar_only_when_asked(skipping_class_1, tmp_path, capsys, monkeypatch, format):
    import sklearn_ddpm._outputs._progress as progress

    pipeline, path, image = skipping_class_1
    # the bar waits a second before it shows; this small image takes less
    monkeypatch.setattr(progress.counted_rows, "__defaults__", (True, 0.0))
    for shown in (True, False):
        writer, todo, _ = start_run(pipeline, [path], tmp_path / str(shown), overlay=False, uncertainty=False,
                                    class_names=None, resume=False, format=format, progress=shown)
        assert predict_and_write(pipeline, todo, writer).failed == []
        err = capsys.readouterr().err
        assert ("square.png" in err and f"/{image.shape[0]}" in err) is shown
