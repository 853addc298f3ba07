"""A ``--resume`` run removes the temporary files that a killed run left mid-write (the soak run found one)."""

from PIL import Image

from sklearn_ddpm import make_segmenter, save_segmenter
from sklearn_ddpm.cli import main
from tests.conftest import make_squares


def test_resume_removes_temporaries_of_a_killed_write(tiny_backbone, tmp_path):
    images, masks = make_squares(3, size=(32, 32))
    pipeline = make_segmenter(tiny_backbone, blocks=(3,), steps=(50,), n_estimators=1, max_epochs=1,
                              max_pixels_per_image=100).fit(images, masks)
    model = save_segmenter(pipeline, tmp_path / "seg.skddpm")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(photos / f"img{i}.png")
    out = tmp_path / "out"
    assert main(["predict", str(model), str(photos), "-o", str(out), "--quiet", "--threads", "1"]) == 0
    # What a process SIGKILLed inside atomic_write leaves: a hidden temporary, the image not done.
    (out / "img1.png").unlink()
    (out / ".img1.png.k1l1ed.tmp").write_bytes(b"\x89PNG half")
    (out / "overlay").mkdir()
    (out / "overlay" / ".img1.png.x.tmp").write_bytes(b"")
    assert main(["predict", str(model), str(photos), "-o", str(out), "--quiet", "--threads", "1", "--resume"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["img0.png", "img1.png", "img2.png"]
