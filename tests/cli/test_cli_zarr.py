"""``sklearn-ddpm predict --format zarr --probabilities``: OME-Zarr stores with class names, resumable."""

import numpy as np
import pytest

from sklearn_ddpm.datasets import read_image
from sklearn_ddpm.segmenter import load_segmenter

from .test_cli_segment import run, work  # noqa: F401  (the fitted-model fixture)

FAST = ["--threads", "1"]

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")


def test_predict_writes_ome_zarr_stores_with_class_names(work, capsys, tmp_path):  # noqa: F811
    out = tmp_path / "pred"
    code, stdout, _ = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                          "--format", "zarr", "--probabilities", *FAST)
    assert code == 0 and "Wrote predictions for 3 images" in stdout
    paths = sorted((work / "test" / "images").iterdir())
    pipeline = load_segmenter(work / "seg.skddpm")
    for path in paths:
        image = read_image(path)
        root = zarr.open_group(str(out / f"{path.stem}.ome.zarr"), mode="r")
        labels = root["labels/classes/0"][:]
        assert labels.shape == image.shape[:2]
        assert np.mean(labels != pipeline.predict([image])[0]) < 1e-4  # float ties at class boundaries
        probabilities = root["probabilities/0"][:]
        assert probabilities.shape == (2, *image.shape[:2]) and probabilities.dtype == np.float16
        assert np.allclose(probabilities.astype(np.float32).sum(0), 1, atol=5e-3)
        properties = root["labels"]["classes"].attrs["ome"]["image-label"]["properties"]
        assert [p["class"] for p in properties] == ["background", "horse"]
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                          "--format", "zarr", "--resume", *FAST)
    assert code == 0 and "3 already done" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_probabilities_with_png_are_npy_files_beside_the_labels(work, capsys, tmp_path):  # noqa: F811
    out = tmp_path / "p"
    code, _, err = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                       "--probabilities", *FAST)
    assert code == 0, err
    pipeline = load_segmenter(work / "seg.skddpm")
    for path in sorted((work / "test" / "images").iterdir()):
        image = read_image(path)
        probabilities = np.load(out / "probabilities" / f"{path.stem}.npy")
        assert probabilities.dtype == np.float16 and probabilities.shape == (2, *image.shape[:2])
        want = np.moveaxis(pipeline.predict_proba([image])[0], -1, 0)
        assert np.abs(probabilities.astype(np.float32) - want).max() < 2e-3


def test_fit_with_tiles_then_predict_zarr(work, capsys, tmp_path):  # noqa: F811
    model = tmp_path / "tiled.skddpm"
    code, _, err = run(capsys, "fit", work / "train" / "images", work / "train" / "masks", "--model", work / "tiny",
                       "--blocks", "6", "9", "--steps", "50", "--n-estimators", "1", "--max-epochs", "2",
                       "--max-pixels-per-image", "200", "--tile", "auto", "--scale", "4", "-o", model, *FAST, "--quiet")
    assert code == 0, err
    pipeline = load_segmenter(model)
    assert (pipeline[0].tile, pipeline[0].scale, pipeline[0].tile_size_) == ("auto", 4.0, 32)
    out = tmp_path / "pred"
    assert run(capsys, "predict", model, work / "test" / "images", "-o", out, "--format", "zarr", *FAST)[0] == 0
    assert len(list(out.glob("*.ome.zarr"))) == 3
    code, _, err = run(capsys, "fit", work / "train" / "images", work / "train" / "masks", "--model", work / "tiny",
                       "--scale", "4", "-o", tmp_path / "x.skddpm", *FAST)
    assert code != 0 and "--scale and --tile-overlap apply to tiles" in err
