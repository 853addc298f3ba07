"""``sklearn-ddpm fit --select``: the chosen settings refitted, the CV table next to the model."""

import json

import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import load_segmenter
from sklearn_ddpm.backbone import Backbone, tiny_unet
from sklearn_ddpm.cli import main
from sklearn_ddpm.model_selection import SEARCH_PRESETS
from tests.conftest import make_squares


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("select_cli")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    images, masks = make_squares(4, (32, 32))
    for i, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{i}.png")
    Backbone(tiny_unet()).save_pretrained(root / "tiny")
    return root


def test_fit_select_writes_the_cv_table_next_to_the_model(folders, capsys):
    out = folders / "seg.skddpm"
    code = main(["fit", str(folders / "images"), str(folders / "masks"), "--model", str(folders / "tiny"),
                 "--select", "--search", "quick", "--budget", "10m", "--blocks", "6", "--steps", "10",
                 "--max-pixels-per-image", "100", "--n-estimators", "1", "--max-epochs", "5", "--threads", "1",
                 "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "Chose" in err and "seg.cv.json" in err and "budget left" in err
    table = json.loads((folders / "seg.cv.json").read_text())
    # --steps was given, so the quick preset varies only standardize and the refinement: 3 candidates.
    params = table["cv_results"]["params"]
    assert len(params) == 3 and all("features__steps" not in p for p in params)
    assert table["n_images"] == 4 and table["budget_seconds"] == 600
    assert table["best_score"] == max(table["cv_results"]["mean_test_score"])
    model = load_segmenter(out)
    assert model[0].steps_ == (10,) and model[0].blocks_ == (6,)
    assert model[-1].n_estimators == 1 and model[-1].n_training_pixels_ == 4 * 100
    best = table["best_params"]
    assert model[-1].standardize == best["clf__standardize"]


def test_fit_select_refuses_an_unknown_search(folders, capsys):
    with pytest.raises(SystemExit):
        main(["fit", str(folders / "images"), str(folders / "masks"), "--select", "--search", "fastest",
              "-o", str(folders / "x.skddpm")])
    assert "invalid choice" in capsys.readouterr().err
    assert "quick" in SEARCH_PRESETS


def test_fit_select_refuses_a_bad_budget(folders, capsys):
    with pytest.raises(SystemExit):  # at parsing, before the slow part
        main(["fit", str(folders / "images"), str(folders / "masks"), "--select", "--budget", "soon",
              "-o", str(folders / "x.skddpm")])
    assert "invalid duration value: 'soon'" in capsys.readouterr().err


def test_fit_select_keeps_the_tiles_and_searches_their_scale(folders, capsys):
    out = folders / "tiled.skddpm"
    code = main(["fit", str(folders / "images"), str(folders / "masks"), "--model", str(folders / "tiny"),
                 "--select", "--search", "default", "--budget", "10m", "--blocks", "6", "--steps", "10",
                 "--max-pixels-per-image", "100", "--n-estimators", "1", "--max-epochs", "5", "--threads", "1",
                 "--tile", "16", "-o", str(out)])
    assert code == 0
    table = json.loads((folders / "tiled.cv.json").read_text())
    scales = {p.get("features__scale") for p in table["cv_results"]["params"]}
    assert {2.0, 4.0} <= scales  # the preset's scale stage ran: the images are tiled
    model = load_segmenter(out)
    assert model[0].tile == 16
    assert model[0].scale == table["best_params"].get("features__scale", 1.0)


def test_fit_select_refuses_a_scale_without_tiles(folders, capsys):
    code = main(["fit", str(folders / "images"), str(folders / "masks"), "--model", str(folders / "tiny"),
                 "--select", "--scale", "2", "-o", str(folders / "x.skddpm")])
    assert code != 0 and "--scale and --tile-overlap apply to tiles" in capsys.readouterr().err
    assert not (folders / "x.skddpm").exists()
