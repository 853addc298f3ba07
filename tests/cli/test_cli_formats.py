"""``fit`` / ``predict`` / ``evaluate`` on 16-bit, float and stacked images; ``--format tiff``, ``--probabilities``."""

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import load_segmenter
from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.cli import main

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

FAST = ["--threads", "1", "--quiet"]
TINY_FIT = ["--blocks", "6", "9", "--steps", "50", "--n-estimators", "2", "--max-epochs", "2",
            "--max-pixels-per-image", "300", *FAST]


def _scene(i, size=(40, 48)):
    mask = np.zeros(size, np.int64)
    mask[6 + 2 * i:26 + 2 * i, 8 + i:30 + i] = 1
    return mask


def _sixteen_bit(mask, seed):
    noise = np.random.default_rng(seed).normal(0, 400, mask.shape)
    return (2000 + 40000 * mask + noise).clip(0, 65535).astype(np.uint16)


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refuses bad option values
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """16-bit gray (3 TIFFs and a 16-bit PNG), 2-channel float TIFFs, a 16-bit TIFF stack; masks; a tiny model."""
    root = tmp_path_factory.mktemp("formats")
    for name in ("gray", "gray_masks", "float", "float_masks", "stack", "stack_masks"):
        (root / name).mkdir()
    for i in range(4):
        mask = _scene(i)
        if i < 3:
            tifffile.imwrite(root / "gray" / f"g{i}.tif", _sixteen_bit(mask, i))
        else:
            Image.fromarray(_sixteen_bit(mask, i)).save(root / "gray" / f"g{i}.png")  # 16-bit PNG ("I;16")
        Image.fromarray(mask.astype(np.uint8)).save(root / "gray_masks" / f"g{i}.png")
        rng = np.random.default_rng(10 + i)
        two = np.stack([mask * 3.0 - 1 + rng.normal(0, .3, mask.shape), 5 - 2.0 * mask + rng.normal(0, .3, mask.shape)],
                       -1).astype(np.float32)
        tifffile.imwrite(root / "float" / f"f{i}.tif", two, photometric="minisblack", planarconfig="contig")
        Image.fromarray(mask.astype(np.uint8)).save(root / "float_masks" / f"f{i}.png")
    planes = [_scene(i) for i in range(5)]
    tifffile.imwrite(root / "stack" / "cells.tif", np.stack([_sixteen_bit(m, 20 + i) for i, m in enumerate(planes)]),
                     metadata={"axes": "ZYX"})
    tifffile.imwrite(root / "stack_masks" / "cells.tif", np.stack(planes).astype(np.uint8), metadata={"axes": "ZYX"})
    Backbone(tiny_unet()).save_pretrained(root / "tiny")
    (root / "classes.txt").write_text("background\ncell\n")
    return root


@pytest.fixture(scope="module")
def gray_model(folders):
    model = folders / "gray.skddpm"
    code = main([str(a) for a in ("fit", folders / "gray", folders / "gray_masks", "--model", folders / "tiny",
                                  "--channels", "mean", "--intensity", "percentile", "--classes",
                                  folders / "classes.txt", "-o", model, *TINY_FIT)])
    assert code == 0
    return model


def _raw(path):
    return tifffile.imread(path) if path.suffix == ".tif" else np.array(Image.open(path))


def test_sixteen_bit_tiff_and_png_fit_keeps_the_mapping_and_predicts_tiff(folders, gray_model, capsys, tmp_path):
    pipeline = load_segmenter(gray_model)
    assert (pipeline[0].channels, pipeline[0].intensity) == ("mean", "percentile")
    assert sorted(pipeline.training_files_) == ["g0.tif", "g1.tif", "g2.tif", "g3.png"]
    out = tmp_path / "pred"
    code, stdout, err = run(capsys, "predict", gray_model, folders / "gray", "-o", out, "--format", "tiff",
                            "--probabilities", "--threads", "1")
    assert code == 0 and "Wrote predictions for 4 images" in stdout, err
    for path in sorted((folders / "gray").iterdir()):
        raw = _raw(path)
        assert raw.dtype == np.uint16
        # The saved model maps raw 16-bit pixels itself, as the command did.
        want = pipeline.predict([raw])[0]
        with tifffile.TiffFile(out / f"{path.stem}.tif") as tif:
            labels, about = tif.asarray(), tif.shaped_metadata[0]
            assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.PALETTE
        assert labels.dtype == np.uint8 and np.mean(labels != want) < 1e-3
        assert about["class_names"] == ["background", "cell"] and len(about["colours"]) == 2
        with tifffile.TiffFile(out / "probabilities" / f"{path.stem}.tif") as tif:
            probabilities, about = tif.asarray(), tif.shaped_metadata[0]
            assert tif.series[0].axes == "CYX"
        assert probabilities.dtype == np.float16 and probabilities.shape == (2, *raw.shape)
        assert about["class_names"] == ["background", "cell"]
        assert np.allclose(probabilities.astype(np.float32).sum(0), 1, atol=5e-3)
        assert np.allclose(probabilities.astype(np.float32), np.moveaxis(pipeline.predict_proba([raw])[0], -1, 0),
                           atol=2e-3)
        uncertainty = tifffile.imread(out / "uncertainty" / f"{path.stem}.tif")
        assert uncertainty.dtype == np.float32 and uncertainty.shape == raw.shape
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.tif")}
    code, stdout, _ = run(capsys, "predict", gray_model, folders / "gray", "-o", out, "--format", "tiff",
                          "--probabilities", "--resume", "--threads", "1")
    assert code == 0 and "4 already done" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.tif")} == stamps


def test_evaluate_maps_sixteen_bit_images_as_fitted(folders, gray_model, capsys):
    code, stdout, err = run(capsys, "evaluate", gray_model, folders / "gray", folders / "gray_masks", *FAST)
    assert code == 0, err
    assert "over 2 classes and 4 images" in stdout
    # Read as 8-bit, the 16-bit images are refused with the file's name, not clipped.
    code, _, err = run(capsys, "evaluate", gray_model, folders / "gray", folders / "gray_masks",
                       "--intensity", "8bit", *FAST)
    assert code != 0 and "g0.tif has values outside 0-255" in err and "percentile" in err


def test_two_channel_float_tiffs_fit_and_predict_png_with_probabilities(folders, capsys, tmp_path):
    model = tmp_path / "float.skddpm"
    code, _, err = run(capsys, "fit", folders / "float", folders / "float_masks", "--model", folders / "tiny",
                       "--channels", "0,1,1", "--intensity", "percentile", "-o", model, *TINY_FIT)
    assert code == 0, err
    pipeline = load_segmenter(model)
    assert (pipeline[0].channels, pipeline[0].intensity) == ((0, 1, 1), "percentile")
    out = tmp_path / "pred"
    code, stdout, err = run(capsys, "predict", model, folders / "float", "-o", out, "--probabilities",
                            "--overlay", "--threads", "1")
    assert code == 0 and "Wrote predictions for 4 images" in stdout, err
    for path in sorted((folders / "float").iterdir()):
        raw = tifffile.imread(path)
        assert raw.shape == (40, 48, 2) and raw.dtype == np.float32
        labels = np.array(Image.open(out / f"{path.stem}.png"))
        assert np.mean(labels != pipeline.predict([raw])[0]) < 1e-3
        probabilities = np.load(out / "probabilities" / f"{path.stem}.npy")
        assert probabilities.dtype == np.float16 and probabilities.shape == (2, 40, 48)
        assert np.mean(probabilities.argmax(0) != labels) < 1e-3
        assert (out / "overlay" / f"{path.stem}.png").is_file()
    # Three channels asked of two: refused naming the file.
    code, _, err = run(capsys, "predict", model, folders / "float", "-o", tmp_path / "bad", "--channels", "0,1,2",
                       *FAST)
    assert code == 1 and "f0.tif has 2 channel(s)" in err and "channels [2] do not exist" in err


def test_a_stack_is_an_image_per_plane_with_a_mask_stack(folders, gray_model, capsys, tmp_path):
    out = tmp_path / "pred"
    code, stdout, err = run(capsys, "predict", gray_model, folders / "stack", "-o", out, "--threads", "1")
    assert code == 0 and "Wrote predictions for 5 images" in stdout, err
    assert sorted(p.name for p in out.glob("*.png")) == [f"cells_{k:04d}.png" for k in range(5)]
    pipeline = load_segmenter(gray_model)
    stack = tifffile.imread(folders / "stack" / "cells.tif")
    labels = np.array(Image.open(out / "cells_0003.png"))
    assert np.mean(labels != pipeline.predict([stack[3]])[0]) < 1e-3
    code, stdout, err = run(capsys, "evaluate", gray_model, folders / "stack", folders / "stack_masks", *FAST)
    assert code == 0 and "over 2 classes and 5 images" in stdout, err


def test_zarr_stores_in_the_image_folder(folders, gray_model, capsys, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    planes = np.stack([_sixteen_bit(_scene(i), 30 + i) for i in range(2)])
    zarr.create_array(str(images / "volume.zarr"), data=planes, chunks=(1, 16, 16))
    out = tmp_path / "pred"
    code, stdout, err = run(capsys, "predict", gray_model, images, "-o", out, "--format", "tiff", "--threads", "1")
    assert code == 0 and "Wrote predictions for 2 images" in stdout, err
    assert sorted(p.name for p in out.glob("*.tif")) == ["volume_0000.tif", "volume_0001.tif"]
    assert tifffile.imread(out / "volume_0001.tif").shape == (40, 48)


def test_unreadable_images_are_skipped_naming_the_file(folders, gray_model, capsys, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    tifffile.imwrite(images / "good.tif", _sixteen_bit(_scene(0), 0))
    zarr.create_array(str(images / "five.zarr"), data=np.zeros((2, 1, 2, 8, 8), np.uint16))
    with pytest.warns(UserWarning):
        tifffile.imwrite(images / "empty.tif", np.zeros((0, 8), np.uint16))
    out = tmp_path / "pred"
    code, stdout, err = run(capsys, "predict", gray_model, images, "-o", out, "--format", "tiff", "--threads", "1")
    assert code == 1 and "Wrote predictions for 1 images" in stdout
    assert "skipped unreadable image" in err and "five.zarr: an array of shape (2, 1, 2, 8, 8)" in err
    assert "empty.tif: the array of shape (0, 8)" in err and "holds no pixels" in err
    assert sorted(p.name for p in out.glob("*.tif")) == ["good.tif"]


def test_tiff_writes_are_atomic_and_resume_cleans_up(folders, gray_model, capsys, tmp_path, monkeypatch):
    from sklearn_ddpm._outputs import _tiff

    out = tmp_path / "pred"
    original = _tiff.class_planes

    def fail_on_second_band(*args, **kwargs):
        fail_on_second_band.calls += 1
        if fail_on_second_band.calls == 1:
            raise RuntimeError("killed mid-write")
        return original(*args, **kwargs)

    fail_on_second_band.calls = 0
    monkeypatch.setattr(_tiff, "class_planes", fail_on_second_band)
    code, stdout, err = run(capsys, "predict", gray_model, folders / "gray", "-o", out, "--format", "tiff",
                            "--probabilities", "--threads", "1")
    assert code == 1 and "killed mid-write" in err and "Wrote predictions for 3 images" in stdout
    # The failed image left neither an output nor a temporary file that --resume could take for done.
    assert not (out / "g0.tif").exists() and not (out / "probabilities" / "g0.tif").exists()
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []
    # A SIGKILLed write leaves its temporary: --resume removes it and redoes the image.
    (out / "probabilities" / ".g0.tif.abc123.tmp").write_bytes(b"half")
    monkeypatch.setattr(_tiff, "class_planes", original)
    code, stdout, err = run(capsys, "predict", gray_model, folders / "gray", "-o", out, "--format", "tiff",
                            "--probabilities", "--resume", "--threads", "1")
    assert code == 0 and "Wrote predictions for 1 images" in stdout and "3 already done" in stdout, err
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []
    assert (out / "g0.tif").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--format", "tiff", "--overlay"], "--overlay writes PNG overlays"),
    (["--channels", "0,1"], "give three channel indices (R,G,B) or one (gray)"),
    (["--channels", "red"], "expected 'mean' or channel indices"),
    (["--intensity", "16bit"], "invalid choice: '16bit'"),
])
def test_bad_format_options_are_refused(folders, gray_model, capsys, tmp_path, extra, message):
    code, _, err = run(capsys, "predict", gray_model, folders / "gray", "-o", tmp_path / "p", *extra, *FAST)
    assert code != 0 and message in err
