"""The simulated scribbles (``benchmarks/_scribbles.py``) and ``benchmarks/scribbles.py --quick``.

The scribbles are checked against their definition (true labels only, inside their regions, near
the target density, every class stroked, deterministic); the benchmark's record against its
structure, never its figures (a smoke run's numbers mean nothing).
"""

import json

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from .test_benchmarks_smoke import _run


@pytest.fixture
def scribbles_module(load):
    return load("_scribbles")


def _blobs(seed=0, shape=(160, 200)):
    """A mask of three classes: background, a large ellipse and a thin bar (plus ignored pixels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    cy, cx = rng.uniform(0.4, 0.6) * shape[0], rng.uniform(0.35, 0.5) * shape[1]
    mask = np.zeros(shape, np.uint8)
    mask[((yy - cy) / 50) ** 2 + ((xx - cx) / 60) ** 2 < 1] = 1
    mask[20:26, 120:190] = 2  # 6 px thin: the erosion removes it, its own skeleton is used
    mask[:3, :3] = 255
    return mask


@pytest.mark.parametrize("fraction", [0.005, 0.01, 0.02, 0.03, 0.05])
def test_scribbles_hit_the_density_with_true_labels_inside_regions(scribbles_module, fraction):
    mask = _blobs()
    s = scribbles_module.simulate_scribbles(mask, fraction, random_state=1)
    labelled = s != 255
    assert s.dtype == np.uint8 and s.shape == mask.shape
    # the true class, never an ignored pixel
    assert (s[labelled] == mask[labelled]).all()
    # every class present in the mask gets a stroke
    assert set(np.unique(s[labelled])) == {0, 1, 2}
    # near the target: within half a piece either way, unless one piece of every class covers more
    piece = max(len(stroke.pixels) for stroke in scribbles_module.region_strokes(mask))
    got = (s != 255).sum()
    assert got <= max(fraction * mask.size, 3 * piece) + piece / 2
    assert got >= fraction * mask.size - piece / 2
    assert scribbles_module.labelled_fraction(s) == pytest.approx(got / mask.size)
    # the large region's strokes keep off its outline (eroded before skeletonizing)
    big = mask == 1
    assert not (labelled & big & ~binary_erosion(big, iterations=1)).any()


def test_scribbles_are_deterministic_given_the_seed(scribbles_module):
    mask = _blobs()
    a = scribbles_module.simulate_scribbles(mask, 0.02, random_state=3)
    b = scribbles_module.simulate_scribbles(mask, 0.02, random_state=3)
    c = scribbles_module.simulate_scribbles(mask, 0.02, random_state=4)
    assert (a == b).all()
    assert (a != c).any()


def test_density_grows_with_the_target_and_all_strokes_bound_it(scribbles_module):
    mask = _blobs()
    got = [scribbles_module.labelled_fraction(scribbles_module.simulate_scribbles(mask, f, random_state=0))
           for f in (0.01, 0.03, 0.05)]
    assert got[0] < got[1] < got[2]
    every = scribbles_module.simulate_scribbles(mask, None)
    assert scribbles_module.labelled_fraction(every) >= got[2]
    # a target above what all strokes cover returns all strokes
    assert (scribbles_module.simulate_scribbles(mask, 1.0, random_state=0) != 255).sum() == (every != 255).sum()


def test_strokes_in_region_label_only_inside_it(scribbles_module):
    mask = _blobs()
    region = np.zeros(mask.shape, bool)
    region[40:120, 30:110] = True
    s = scribbles_module.strokes_in_region(mask, region)
    labelled = s != 255
    assert labelled.any() and not (labelled & ~region).any()
    assert (s[labelled] == mask[labelled]).all()
    with pytest.raises(ValueError, match="region has shape"):
        scribbles_module.strokes_in_region(mask, region[:10])


def test_bad_arguments_are_refused(scribbles_module):
    with pytest.raises(ValueError, match="fraction"):
        scribbles_module.simulate_scribbles(_blobs(), 0)
    with pytest.raises(ValueError, match="2-d"):
        scribbles_module.region_strokes(np.zeros((2, 3, 4), np.uint8))


def test_scribbles_quick(load, tmp_path, weizmann_root):
    module = load("scribbles")
    record = _run(module, tmp_path)
    settings = record["settings"]
    assert record["status"] == "complete"
    fractions = ["full", *settings["fractions"]]
    cells = {(r["method"], str(r["fraction"]), r["seed"]) for r in record["rows"]}
    assert cells == {(m, str(f), s) for m in ("ddpm", "skimage") for f in fractions for s in settings["seeds"]}
    for row in record["rows"]:
        assert 0 <= row["miou"] <= 100
        assert len(row["per_class_iou"]) == len(record["data"]["weizmann"]["class_names"])
        if row["fraction"] == "full":
            assert row["labelled_fraction_mean"] == 1.0
        else:
            # the scribbles' measured density is recorded and near its target
            assert 0.4 * row["fraction"] < row["labelled_fraction_mean"] < 2.5 * row["fraction"]
            assert row["images_with_every_class_labelled"] == settings["n_labeled"]
    # the summary's ± is the sample std over the seeds' rows
    for s in record["summary"]:
        per_seed = [r["miou"] for r in record["rows"]
                    if (r["method"], str(r["fraction"])) == (s["method"], str(s["fraction"]))]
        assert s["miou_mean"] == pytest.approx(np.mean(per_seed))
        assert s["miou_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert "ddof=1" in record["miou_std"]
    assert record["target"]["met"] in (True, False)
    # a rerun with the same settings resumes: nothing is recomputed, the rows are kept
    again = module.main(["--quick", "--threads", "1", "--device", "cpu", "--out", str(tmp_path / "scribbles.json")])
    again_record = json.loads(again.read_text())
    assert again_record["rows"] == record["rows"]
    # ... and keeps the measuring run's code state and run time: the rerun measured nothing
    assert again_record["code"] == record["code"] and again_record["timings"] == record["timings"]
    assert again_record["status"] == "complete" and again_record["datasets_planned"] == ["weizmann"]
    # the docs are rendered from the record, and name it
    docs = module.render_docs(results=tmp_path, docs=tmp_path / "scribbles.md", plot=tmp_path / "plot.png")
    text = docs.read_text()
    assert "scribbles.json" in text and "full masks" in text and "target 2 %" in text
    assert f"{record['summary'][0]['miou_mean']:.1f}" in text


def test_run_order_follows_first(load):
    from argparse import Namespace

    module = load("scribbles")
    order = module.run_order(Namespace(fractions=[0.005, 0.01, 0.02, 0.03], first=[0.03, 0.01, 0.5]))
    assert order == ["full", 0.03, 0.01, 0.005, 0.02]


def test_committed_docs_page_is_a_fresh_rendering(load):
    """docs/scribbles.md is rendered from the committed records; a figure typed into it, or a record
    rewritten without rendering the page again, fails here (and in ``report.py --check``)."""
    module = load("scribbles")
    assert module.page_text(draw=False) == module.DOCS.read_text(), "run: python benchmarks/report.py"
