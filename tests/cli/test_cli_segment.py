"""``sklearn-ddpm fit / predict / evaluate`` end to end on a few Weizmann horses, and bad input."""

import json
import re
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.pipeline import Pipeline

from sklearn_ddpm import load_segmenter, miou_score
from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.cli import main
from sklearn_ddpm.datasets import read_image, read_mask

from ._spy import UNetBatchSpy

FAST = ["--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def work(tmp_path_factory, weizmann_root):
    """3 ``labeled_pool`` horses to fit, 3 ``test`` horses to predict/evaluate, a tiny model, a fitted file."""
    root = tmp_path_factory.mktemp("cli")
    splits = json.loads((weizmann_root / "splits.json").read_text())
    for folder, split, n in (("train", "labeled_pool", 3), ("test", "test", 3)):
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "masks").mkdir()
        for name in splits[split][:n]:
            shutil.copy(weizmann_root / "images" / f"{name}.jpg", root / folder / "images")
            shutil.copy(weizmann_root / "masks" / f"{name}.png", root / folder / "masks")
    Backbone(tiny_unet()).save_pretrained(root / "tiny")
    (root / "classes.txt").write_text("background\nhorse\n")
    code = main(["fit", str(root / "train" / "images"), str(root / "train" / "masks"), "--model", str(root / "tiny"),
                 "--blocks", "6", "9", "--steps", "50", "150", "--n-estimators", "2", "--max-epochs", "3",
                 "--max-pixels-per-image", "400", "--classes", str(root / "classes.txt"),
                 "-o", str(root / "seg.skddpm"), *FAST])
    assert code == 0
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the three commands end to end -----------------------------------------------------------------
def test_fit_saves_a_fitted_pipeline(work):
    pipeline = load_segmenter(work / "seg.skddpm")
    assert isinstance(pipeline, Pipeline)
    assert pipeline.class_names_ == ["background", "horse"]
    assert pipeline[-1].classes_.tolist() == [0, 1]
    assert pipeline[0].blocks_ == (6, 9) and pipeline[0].steps_ == (50, 150)
    assert sorted(pipeline.training_files_) == sorted(p.name for p in (work / "train" / "images").iterdir())
    assert set(pipeline.versions_) >= {"sklearn-ddpm", "torch", "diffusers", "scikit-learn"}
    # the product's MLP batch (make_segmenter's mlp_batch_size), not the classifier's reference 64
    assert pipeline[-1].batch_size == 256
    assert pipeline[-1].standardize is True and pipeline[-1].feature_mean_ is not None


def test_fit_mlp_batch_size_reaches_the_classifier(work, capsys, tmp_path):
    code, _, err = run(capsys, "fit", work / "train" / "images", work / "train" / "masks", "--model", work / "tiny",
                       "--blocks", "6", "--steps", "50", "--n-estimators", "1", "--max-epochs", "1",
                       "--max-pixels-per-image", "100", "--mlp-batch-size", "32", "--no-standardize",
                       "-o", tmp_path / "m.skddpm", *FAST)
    assert code == 0, err
    clf = load_segmenter(tmp_path / "m.skddpm")[-1]
    assert clf.batch_size == 32 and clf.standardize is False and clf.feature_mean_ is None
    code, _, err = run(capsys, "fit", work / "train" / "images", work / "train" / "masks", "--mlp-batch-size", "0",
                       "-o", tmp_path / "n.skddpm", *FAST)
    assert code != 0 and "--mlp-batch-size must be at least 1" in err


def test_predict_writes_masks_at_original_sizes(work, capsys, tmp_path):
    out = tmp_path / "pred"
    code, stdout, _ = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                          "--overlay", "--uncertainty", "--threads", "1")
    assert code == 0 and "Wrote predictions for 3 images" in stdout
    paths = sorted((work / "test" / "images").iterdir())
    images = [read_image(p) for p in paths]
    expected = load_segmenter(work / "seg.skddpm").predict(images)
    for path, image, want in zip(paths, images, expected):
        written = Image.open(out / f"{path.stem}.png")
        assert written.mode == "P" and written.size == (image.shape[1], image.shape[0])
        labels = read_mask(out / f"{path.stem}.png")
        # Same batch as the command, so equal up to floating-point ties at class boundaries.
        assert labels.shape == want.shape and np.mean(labels != want) < 1e-4
        over = np.asarray(Image.open(out / "overlay" / f"{path.stem}.png"))
        assert over.shape[1] == image.shape[1] and over.shape[0] > image.shape[0]  # legend strip below
        heat = np.asarray(Image.open(out / "uncertainty" / f"{path.stem}.png"))
        raw = np.load(out / "uncertainty" / f"{path.stem}.npy")
        assert heat.shape == image.shape and raw.shape == image.shape[:2]
        assert raw.min() >= -1e-6 and raw.max() <= np.log(2) + 1e-6
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_predict_resume_only_redoes_missing_files(work, capsys, tmp_path):
    out = tmp_path / "pred"
    assert run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out, *FAST)[0] == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 3
    files[0].unlink()
    stamps = {p: p.stat().st_mtime_ns for p in files[1:]}
    code, stdout, _ = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                          "--resume", "--threads", "1")
    assert code == 0 and "Wrote predictions for 1 images" in stdout and "2 already done" in stdout
    assert files[0].is_file()
    assert {p: p.stat().st_mtime_ns for p in files[1:]} == stamps


def test_evaluate_prints_the_miou_of_the_predictions(work, capsys, tmp_path):
    code, stdout, _ = run(capsys, "evaluate", work / "seg.skddpm", work / "test" / "images", work / "test" / "masks",
                          *FAST)
    assert code == 0
    assert re.search(r"^\s*0\s+background\s+\d+\.\d", stdout, re.M) and re.search(r"^\s*1\s+horse\s", stdout, re.M)
    reported = float(re.search(r"mIoU (\d+\.\d) % over 2 classes and 3 images", stdout).group(1))
    # Recompute independently from the PNGs `predict` writes and the ground-truth files.
    out = tmp_path / "pred"
    assert run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out, *FAST)[0] == 0
    names = sorted(p.stem for p in (work / "test" / "masks").iterdir())
    truth = [read_mask(work / "test" / "masks" / f"{n}.png") for n in names]
    predicted = [read_mask(out / f"{n}.png") for n in names]
    assert reported == pytest.approx(100 * miou_score(truth, predicted), abs=0.051)


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate"])
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"sklearn-ddpm {command} " in text
    for flag in ("--device", "--batch-size", "--quiet"):
        assert flag in text


# -- bad input: each gives exit code 2 and a message naming the file or argument ----------------------
def _copy_set(work, tmp_path, folder="train"):
    shutil.copytree(work / folder, tmp_path / folder)
    return tmp_path / folder / "images", tmp_path / folder / "masks"


def _fit_args(work, images, masks, *extra, output=None):
    return ["fit", images, masks, "--model", work / "tiny", "--blocks", "6", "--steps", "50", "--n-estimators", "1",
            "--max-epochs", "1", "--max-pixels-per-image", "50", "-o", output or images.parent / "m.skddpm",
            *FAST, *extra]


def test_empty_folders(work, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, *_fit_args(work, tmp_path / "empty", work / "train" / "masks"))
    assert code == 2 and "IMAGE_DIR" in err and "holds no image files" in err
    code, _, err = run(capsys, "predict", work / "seg.skddpm", tmp_path / "empty", "-o", tmp_path / "o", *FAST)
    assert code == 2 and "holds no image files" in err
    code, _, err = run(capsys, "evaluate", work / "seg.skddpm", work / "test" / "images", tmp_path / "empty", *FAST)
    assert code == 2 and "MASK_DIR" in err and "holds no mask files" in err


def test_corrupt_image_at_fit_names_the_file(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path)
    victim = sorted(images.iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:200])
    code, _, err = run(capsys, *_fit_args(work, images, masks))
    assert code == 2 and victim.name in err and "Cannot read" in err


def test_corrupt_image_at_predict_is_skipped_and_reported(work, capsys, tmp_path):
    images, _ = _copy_set(work, tmp_path, "test")
    victim = sorted(images.iterdir())[0]
    victim.write_bytes(b"garbage")
    code, stdout, err = run(capsys, "predict", work / "seg.skddpm", images, "-o", tmp_path / "out", *FAST)
    assert code == 1 and f"skipped unreadable image {victim}" in err
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.png")) == sorted(p.stem for p in images.iterdir())[1:]


def test_mask_of_another_size(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path)
    victim = sorted(masks.iterdir())[0]
    mask = read_mask(victim).copy()  # read_mask may return a read-only view
    Image.fromarray(mask[:-3]).save(victim)
    code, _, err = run(capsys, *_fit_args(work, images, masks))
    assert code == 2 and victim.name in err and "a mask must have its image's size" in err
    code, _, err = run(capsys, "evaluate", work / "seg.skddpm", images, masks, *FAST)
    assert code == 2 and victim.name in err


def test_labels_outside_the_named_classes(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path)
    victim = sorted(masks.iterdir())[2]
    mask = read_mask(victim).copy()  # read_mask may return a read-only view
    mask[:5, :5] = 7
    Image.fromarray(mask).save(victim)
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--classes", work / "classes.txt"))
    assert code == 2 and f"{victim.name}: labels [7] are outside the 2 classes" in err
    code, _, err = run(capsys, "evaluate", work / "seg.skddpm", images, masks, "--classes", work / "classes.txt", *FAST)
    assert code == 2 and victim.name in err


def test_only_one_class_in_training(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path)
    for path in masks.iterdir():
        Image.fromarray(np.zeros_like(read_mask(path))).save(path)
    code, _, err = run(capsys, *_fit_args(work, images, masks))
    assert code == 2 and "hold only class 0" in err


def test_class_missing_from_some_training_images_works(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path)
    first = sorted(masks.iterdir())[0]
    Image.fromarray(np.zeros_like(read_mask(first))).save(first)  # no horse in this one
    code, _, _ = run(capsys, *_fit_args(work, images, masks))
    assert code == 0 and load_segmenter(images.parent / "m.skddpm")[-1].classes_.tolist() == [0, 1]


def test_bad_backbones(work, capsys, tmp_path):
    images, masks = work / "train" / "images", work / "train" / "masks"
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    wrong = tmp_path / "wrong"
    shutil.copytree(work / "tiny", wrong)
    Backbone(tiny_unet(base_channels=8)).save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "unet" / "diffusion_pytorch_model.safetensors", wrong / "unet")
    truncated = tmp_path / "truncated"
    shutil.copytree(work / "tiny", truncated)
    weights = truncated / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    for model in (tmp_path / "garbage.pt", wrong, truncated):
        args = _fit_args(work, images, masks, output=tmp_path / "m.skddpm")
        args[args.index("--model") + 1] = model
        code, _, err = run(capsys, *args)
        assert code == 2 and f"--model {str(model)!r} could not be loaded" in err, err
    args[args.index("--model") + 1] = tmp_path / "missing.pt"
    code, _, err = run(capsys, *args)
    assert code == 2 and "--model" in err and "does not exist" in err
    assert not (tmp_path / "m.skddpm").exists()


def test_output_that_cannot_be_written(work, capsys, tmp_path):
    (tmp_path / "a_file").write_text("x")
    blocked = tmp_path / "a_file" / "out"
    code, _, err = run(capsys, *_fit_args(work, work / "train" / "images", work / "train" / "masks",
                                          output=blocked / "seg.skddpm"))
    assert code == 2 and "-o/--output folder" in err and "is a file, not a folder" in err
    code, _, err = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", blocked, *FAST)
    assert code == 2 and str(blocked) in err


def test_broken_or_unfitted_model_files(work, capsys, tmp_path):
    truncated = tmp_path / "truncated.skddpm"
    truncated.write_bytes((work / "seg.skddpm").read_bytes()[:5000])
    code, _, err = run(capsys, "predict", truncated, work / "test" / "images", "-o", tmp_path / "o", *FAST)
    assert code == 2 and "truncated.skddpm is a damaged sklearn-ddpm model file" in err
    unfitted = load_segmenter(work / "seg.skddpm")
    del unfitted[-1].net_
    joblib.dump(unfitted, tmp_path / "unfitted.joblib")
    code, _, err = run(capsys, "evaluate", tmp_path / "unfitted.joblib", work / "test" / "images",
                       work / "test" / "masks", *FAST)
    assert code == 2 and "unfitted.joblib is a pickle file" in err and "--trust-pickle" in err
    code, _, err = run(capsys, "evaluate", tmp_path / "unfitted.joblib", work / "test" / "images",
                       work / "test" / "masks", "--trust-pickle", *FAST)
    assert code == 2 and "is not fitted yet" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_without_cuda(work, capsys, tmp_path):
    code, _, err = run(capsys, *_fit_args(work, work / "train" / "images", work / "train" / "masks", "--device", "cuda",
                                          output=tmp_path / "m.skddpm"))
    assert code == 2 and "CUDA is not available" in err
    code, _, err = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", tmp_path / "o",
                       "--device", "cuda", *FAST)
    assert code == 2 and "CUDA is not available" in err


def test_evaluate_masks_with_a_class_the_model_never_saw(work, capsys, tmp_path):
    images, masks = _copy_set(work, tmp_path, "test")
    victim = sorted(masks.iterdir())[0]
    mask = read_mask(victim).copy()  # read_mask may return a read-only view
    mask[mask == 1] = 2
    Image.fromarray(mask).save(victim)
    # Beyond the model's 2 named classes: an error naming the mask, as in `fit` and as --help says.
    code, stdout, err = run(capsys, "evaluate", work / "seg.skddpm", images, masks, *FAST)
    assert code == 2 and f"{victim.name}: labels [2] are outside the 2 classes" in err, err
    assert stdout == ""
    code, _, err = run(capsys, "evaluate", work / "seg.skddpm", images, masks, "--classes", work / "classes.txt",
                       *FAST)
    assert code == 2 and victim.name in err
    # Named by --classes but never seen at fit: a warning, and the class scores 0.
    three = tmp_path / "three.txt"
    three.write_text("background\nhorse\nrider\n")
    with pytest.warns(UserWarning, match=r"labels \[2\] that the model was not fitted on"):
        code, stdout, _ = run(capsys, "evaluate", work / "seg.skddpm", images, masks, "--classes", three, *FAST)
    assert code == 0
    assert re.search(r"^\s*2\s+rider\s+0\.0\s", stdout, re.M), stdout
    assert "over 3 classes" in stdout


def test_evaluate_help_and_behaviour_agree_on_unlisted_labels(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "beyond the class list" in help_text and "is an error" in help_text


def test_non_positive_numbers_are_rejected(work, capsys, tmp_path):
    code, _, err = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", tmp_path / "o",
                       "--batch-size", "0", *FAST)
    assert code == 2 and "--batch-size must be at least 1" in err


def test_image_list_restricts_every_command(work, capsys, tmp_path):
    names = sorted(p.name for p in (work / "test" / "images").iterdir())
    listing = tmp_path / "subset.txt"
    listing.write_text(f"# one split\n{names[0]}\n{Path(names[1]).stem}\n")
    out = tmp_path / "pred"
    code, stdout, _ = run(capsys, "predict", work / "seg.skddpm", work / "test" / "images", "-o", out,
                          "--image-list", listing, "--threads", "1", "--quiet")
    assert code == 0 and sorted(p.name for p in out.glob("*.png")) == sorted(Path(n).stem + ".png" for n in names[:2])
    code, stdout, _ = run(capsys, "evaluate", work / "seg.skddpm", work / "test" / "images", work / "test" / "masks",
                          "--image-list", listing, "--threads", "1")
    assert code == 0 and "2 images" in stdout
    listing.write_text("not_there.jpg\n")
    code, _, err = run(capsys, "evaluate", work / "seg.skddpm", work / "test" / "images", work / "test" / "masks",
                       "--image-list", listing)
    assert code == 2 and "not_there" in err


def test_fit_accepts_a_non_square_image_size(work, capsys, tmp_path):
    output = tmp_path / "portrait.skddpm"
    code, _, _ = run(capsys, *_fit_args(work, work / "train" / "images", work / "train" / "masks", "--image-size",
                                        "48x32", output=output))
    assert code == 0
    assert load_segmenter(output)[0].image_size_ == (48, 32)
    with pytest.raises(SystemExit):
        main([str(a) for a in _fit_args(work, work / "train" / "images", work / "train" / "masks",
                                        "--image-size", "48x")])


# -- issue 15 --------------------------------------------------------------------------------------
def test_batch_size_counts_images_per_forward_pass(work, capsys, tmp_path):
    output = tmp_path / "b.skddpm"
    args = _fit_args(work, work / "train" / "images", work / "train" / "masks", "--batch-size", "2", output=output)
    args[args.index("--steps") + 1:args.index("--steps") + 2] = ["50", "150"]
    with UNetBatchSpy() as spy:
        code, _, _ = run(capsys, *args)
    assert code == 0
    # 3 training images, 2 per pass, one pass per step and pair of images: 2 passes per step, each
    # of 2 inputs (the last image's pass is padded to the same size; any earlier pass is the
    # backbone's one-input shape probe).
    assert spy.rows[-4:] == [2, 2, 2, 2] and max(spy.rows) == 2
    assert load_segmenter(output)[0].batch_size == 2
    assert load_segmenter(output, batch_size=5)[0].batch_size == 5


def test_batch_size_has_one_help_text_in_every_command(capsys):
    texts = {}
    for command in ("fit", "predict", "evaluate", "reproduce"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        texts[command] = re.search(r"--batch-size N\|auto\s+(.*?)(?= --|$)", help_text).group(1)
    assert len(set(texts.values())) == 1, texts
    assert "images per UNet forward pass" in texts["fit"]


def _scribble(masks, per_class=15, seed=0):
    """Keep ``per_class`` random labelled pixels of every class in every mask; the rest becomes 255."""
    rng = np.random.default_rng(seed)
    for path in sorted(masks.iterdir()):
        mask = read_mask(path)
        sparse = np.full_like(mask, 255)
        for k in np.unique(mask[mask != 255]):
            ys, xs = np.nonzero(mask == k)
            keep = rng.choice(len(ys), size=min(per_class, len(ys)), replace=False)
            sparse[ys[keep], xs[keep]] = k
        Image.fromarray(sparse.astype(np.uint8)).save(path)


def test_fit_on_scribbles_without_flags(work, capsys, tmp_path):
    from sklearn_ddpm import MLPEnsembleClassifier

    images, masks = _copy_set(work, tmp_path)
    _scribble(masks)
    # The default ("auto") keeps every stroke of a sparse mask.
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--max-pixels-per-image", "1000"))
    assert code == 0, err
    clf = load_segmenter(images.parent / "m.skddpm")[-1]
    assert clf.min_class_pixels == "auto" and clf.classes_.tolist() == [0, 1]
    assert clf.n_training_pixels_ == 3 * 2 * 15
    # The reference's fixed 20-pixel rule drops strokes of 15 pixels.
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--min-class-pixels", "20",
                                          output=tmp_path / "twenty.skddpm"))
    assert code == 2 and "min_class_pixels" in err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"--min-class-pixels N\|auto .*scribble.*default: {MLPEnsembleClassifier().min_class_pixels}\)",
                     help_text), help_text


def test_fit_on_napari_label_images(work, capsys, tmp_path):
    from sklearn_ddpm.interactive import mask_to_napari

    images, masks = _copy_set(work, tmp_path)
    _scribble(masks)
    expected = {path.name: read_mask(path) for path in masks.iterdir()}
    for path in masks.iterdir():
        Image.fromarray(mask_to_napari(expected[path.name]).astype(np.uint8)).save(path)
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--mask-convention", "napari", "--classes",
                                          work / "classes.txt", "--max-pixels-per-image", "1000"))
    assert code == 0, err
    pipeline = load_segmenter(images.parent / "m.skddpm")
    assert pipeline.class_names_ == ["background", "horse"] and pipeline[-1].classes_.tolist() == [0, 1]
    assert pipeline[-1].n_training_pixels_ == 3 * 2 * 15
    # Read as 255-convention masks the same files mean other classes (0 would be all unlabelled pixels).
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--classes", work / "classes.txt",
                                          output=tmp_path / "wrong.skddpm"))
    assert code == 2 and "outside the 2 classes" in err
    # A napari label beyond the classes names the file and the convention.
    victim = sorted(masks.iterdir())[0]
    Image.fromarray(np.full(expected[victim.name].shape, 3, np.uint8)).save(victim)
    code, _, err = run(capsys, *_fit_args(work, images, masks, "--mask-convention", "napari", "--classes",
                                          work / "classes.txt", output=tmp_path / "bad.skddpm"))
    assert code == 2 and victim.name in err and "napari" in err, err


@pytest.fixture(scope="module")
def unnamed(work):
    """A model fitted without --classes."""
    output = work / "unnamed.skddpm"
    assert main([str(a) for a in _fit_args(work, work / "train" / "images", work / "train" / "masks",
                                           output=output)]) == 0
    return output


def test_without_classes_overlays_have_a_legend(work, unnamed, capsys, tmp_path):
    out = tmp_path / "pred"
    code, _, _ = run(capsys, "predict", unnamed, work / "test" / "images", "-o", out, "--overlay", *FAST)
    assert code == 0
    for path in sorted((work / "test" / "images").iterdir()):
        image = read_image(path)
        over = np.asarray(Image.open(out / "overlay" / f"{path.stem}.png"))
        assert over.shape[1] == image.shape[1] and over.shape[0] > image.shape[0]  # legend strip below


def test_without_classes_evaluate_names_the_classes(work, unnamed, capsys):
    code, stdout, _ = run(capsys, "evaluate", unnamed, work / "test" / "images", work / "test" / "masks", *FAST)
    assert code == 0
    assert re.search(r"^\s*0\s+class 0\s+\d+\.\d", stdout, re.M), stdout
    assert re.search(r"^\s*1\s+class 1\s+\d+\.\d", stdout, re.M), stdout
