"""One large image on a Dask cluster: bands of zarr chunk-rows as tasks, written into one OME-Zarr store."""

import numpy as np
import pytest
from distributed import WorkerPlugin, get_task_stream
from PIL import Image

from sklearn_ddpm import make_segmenter, save_segmenter
from sklearn_ddpm._outputs import _zarr
from sklearn_ddpm.cli import main
from sklearn_ddpm.distributed import predict_folder
from sklearn_ddpm.distributed._bands import plan_bands, predict_band
from sklearn_ddpm.postprocessing import GuidedFilter

from ..conftest import make_squares
from ._spy import WorkerSpy, read_log

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

CHUNK = 64  # 300 rows: bands 0:64, ..., 256:300, each a task with pixels_per_task=1
ARRAYS = ("0", "labels/classes/0", "uncertainty/0", "probabilities/0")


@pytest.fixture(scope="module")
def tiled_model(tmp_path_factory, tiny_backbone):
    images, masks = make_squares(n_images=3, size=(64, 80), seed=1)
    # Tiles of 32 model pixels at 4 image pixels each: 300 x 500 is 3 x 5 tiles; flip_tta and the
    # guided filter (16 rows of context) are on, so the bands must handle both.
    pipeline = make_segmenter(tiny_backbone, blocks=(3, 6), steps=(50,), batch_size=4, n_estimators=2, max_epochs=2,
                              max_pixels_per_image=300, max_pixels_per_class=None, flip_tta=True,
                              refine=GuidedFilter(radius=8))
    pipeline.set_params(features__tile=32, features__tile_overlap=8, features__scale=4.0)
    pipeline.fit(images, masks)
    return pipeline, save_segmenter(pipeline, tmp_path_factory.mktemp("model") / "tiled.skddpm")


@pytest.fixture(scope="module")
def large_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    image, _ = make_squares(n_images=1, size=(300, 500), seed=5)
    Image.fromarray(image[0]).save(folder / "big.png")
    return folder


@pytest.fixture(scope="module")
def in_process(tiled_model, large_dir, tmp_path_factory):
    """The store of ``sklearn-ddpm predict --format zarr --probabilities`` in this process."""
    out = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_zarr, "CHUNK", CHUNK)
        assert main(["predict", str(tiled_model[1]), str(large_dir), "-o", str(out), "--format", "zarr",
                     "--probabilities", "--quiet", "--threads", "1"]) == 0
    return zarr.open_group(str(out / "big.ome.zarr"), mode="r")


def _assert_same_prediction(store, reference):
    group = zarr.open_group(str(store), mode="r")
    for name in ARRAYS:
        assert group[name].shape == reference[name].shape and group[name].chunks == reference[name].chunks
    np.testing.assert_array_equal(group["0"][:], reference["0"][:])
    np.testing.assert_array_equal(group["labels/classes/0"][:], reference["labels/classes/0"][:])
    # Other tile batches and filter blocks: float sums in another order (one float16 step apart, 4.9e-4).
    np.testing.assert_allclose(group["probabilities/0"][:].astype(np.float32),
                               reference["probabilities/0"][:].astype(np.float32), rtol=0, atol=1e-3)
    np.testing.assert_allclose(group["uncertainty/0"][:], reference["uncertainty/0"][:], rtol=0, atol=1e-6)
    assert group["labels"].attrs.asdict() == reference["labels"].attrs.asdict()
    assert (group["labels/classes"].attrs["ome"]["image-label"]
            == reference["labels/classes"].attrs["ome"]["image-label"])


def test_a_band_is_the_rows_of_the_whole_prediction(tiled_model, large_dir):
    pipeline = tiled_model[0]
    image = np.asarray(Image.open(large_dir / "big.png"))
    whole = {key: [] for key in ("labels", "probabilities", "uncertainty")}
    for _, _, _, outputs in pipeline[-1].predict_bands(pipeline[0].transform([image])):
        for key in whole:
            whole[key].append(outputs[key])
    whole = {key: np.concatenate(parts) for key, parts in whole.items()}
    for top, bottom in [(128, 192), (256, 300), (0, 64)]:
        rows, parts = top, []
        for first, stop, outputs in predict_band(pipeline, image, top, bottom):
            assert first == rows
            rows = stop
            parts.append(outputs)
        assert rows == bottom
        np.testing.assert_array_equal(np.concatenate([p["labels"] for p in parts]), whole["labels"][top:bottom])
        for key in ("probabilities", "uncertainty"):
            np.testing.assert_allclose(np.concatenate([p[key] for p in parts]), whole[key][top:bottom], rtol=0,
                                       atol=1e-5)


def test_cli_workers_write_the_bands_of_one_image_into_one_store(tiled_model, large_dir, in_process, client, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(_zarr, "CHUNK", CHUNK)
    log = tmp_path / "log"
    client.register_plugin(WorkerSpy(log), name="spy")
    try:
        with get_task_stream(client) as stream:
            assert main(["predict", str(tiled_model[1]), str(large_dir), "-o", str(tmp_path / "out"), "--format",
                         "zarr", "--probabilities", "--scheduler", client.scheduler.address, "--pixels-per-task", "1",
                         "--quiet", "--threads", "1"]) == 0
    finally:
        client.unregister_worker_plugin("spy")
    bands = [task for task in stream.data if task["key"].startswith("_band_task")]
    assert len(bands) == len(plan_bands((300, 500), CHUNK, 1)) == 5
    assert len(read_log(log)[0]) == 2  # the model, loaded once by each of the 2 workers
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big.ome.zarr"]  # no temporary store left
    _assert_same_prediction(tmp_path / "out" / "big.ome.zarr", in_process)


class FailingBand(WorkerPlugin):
    """Makes the band task of rows ``top:...`` raise in every worker, as a band whose prediction fails."""

    def __init__(self, top):
        self.top = top

    def setup(self, worker):
        import sklearn_ddpm.distributed._bands as bands

        self.original = original = bands.predict_band
        top = self.top

        def failing(pipeline, image, first, stop):
            if first == top:
                raise MemoryError(f"band {first}:{stop} failed on purpose")
            return original(pipeline, image, first, stop)

        bands.predict_band = failing

    def teardown(self, worker):
        import sklearn_ddpm.distributed._bands as bands

        bands.predict_band = self.original


def test_a_failed_band_leaves_no_store_that_resume_takes_for_done(tiled_model, large_dir, in_process, client,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setattr(_zarr, "CHUNK", CHUNK)
    out = tmp_path / "out"
    client.register_plugin(FailingBand(128), name="failing-band")
    try:
        summary = predict_folder(tiled_model[1], large_dir, out, client=client, format="zarr", probabilities=True,
                                 pixels_per_task=1, progress=False, torch_threads=1)
    finally:
        client.unregister_worker_plugin("failing-band")
    assert summary.written == [] and [file for file, _ in summary.failed] == [str(large_dir / "big.png")]
    assert "rows 128:192" in summary.failed[0][1] and "failed on purpose" in summary.failed[0][1]
    assert list(out.iterdir()) == []  # the other bands' rows were written, then their store removed
    # A client killed mid-run leaves its temporary store: --resume removes it and redoes the image.
    writer = _zarr.ZarrPredictionWriter(out, probabilities=True, class_names=["a", "b"])
    partial = writer.start_store(large_dir / "big.png", (300, 500))
    summary = predict_folder(tiled_model[1], large_dir, out, client=client, format="zarr", probabilities=True,
                             pixels_per_task=1, progress=False, torch_threads=1, resume=True)
    assert summary.written == ["big.png"] and summary.skipped == [] and summary.failed == []
    assert not partial.exists() and sorted(p.name for p in out.iterdir()) == ["big.ome.zarr"]
    _assert_same_prediction(out / "big.ome.zarr", in_process)


def test_small_images_and_untiled_models_are_image_tasks_in_zarr(segmenter_file, image_dir, client, tmp_path):
    # An untiled model cannot be split into bands: every image is one task, as with PNG outputs.
    assert main(["predict", str(segmenter_file), str(image_dir), "-o", str(tmp_path / "local"), "--format", "zarr",
                 "--quiet", "--threads", "1"]) == 0
    with get_task_stream(client) as stream:
        summary = predict_folder(segmenter_file, image_dir, tmp_path / "dask", client=client, format="zarr",
                                 images_per_task=4, pixels_per_task=1, progress=False, torch_threads=1)
    assert summary.failed == [] and len(summary.written) == len(list(image_dir.iterdir()))
    assert not any(task["key"].startswith("_band_task") for task in stream.data)
    stores = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == stores
    for name in stores:
        labels = [zarr.open_group(str(tmp_path / run / name), mode="r")["labels/classes/0"][:]
                  for run in ("dask", "local")]
        np.testing.assert_array_equal(*labels)
