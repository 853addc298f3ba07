"""benchmarks/report.py: the committed pages equal a fresh rendering of the records, and the rendering
computes what it says (sample std over the per-seed scores, "not recorded" for a missing hash)."""

import json
import shutil

import numpy as np
import pytest


def _copy_results(load, tmp_path, monkeypatch):
    """A copy of the records (archive/ included: history.md quotes two archived ones) that report.py reads."""
    records = load("_report_records")  # where every record is read, for the tables and the inline figures
    results = tmp_path / "results"
    shutil.copytree(records.RESULTS, results, ignore=shutil.ignore_patterns("*.png", "ccp_ddpm_backbone"))
    monkeypatch.setattr(records, "RESULTS", results)
    return results


def test_committed_pages_match_a_fresh_rendering(load, capsys):
    report = load("report")
    assert report.main(["--check"]) == 0, capsys.readouterr().out


def test_every_marker_is_rendered(load):
    report = load("report")
    for page in report.PAGES:
        if page.is_file():
            text = page.read_text()
            for match in report.MARKER.finditer(text):
                assert match["body"].strip(), f"{page.name}: table {match['name']} is empty"


def test_a_changed_record_makes_the_check_fail(load, tmp_path, monkeypatch, capsys):
    report = load("report")
    results = _copy_results(load, tmp_path, monkeypatch)
    record = json.loads((results / "weizmann_default_n20.json").read_text())
    record["rows"][0]["scores"] = [s - 1.0 for s in record["rows"][0]["scores"]]
    (results / "weizmann_default_n20.json").write_text(json.dumps(record))
    assert report.main(["--check"]) == 1
    assert "weizmann_default_n20" in capsys.readouterr().out


def test_mean_std_is_the_sample_std_with_the_seed_count(load):
    report = load("report")
    values = [80.0, 81.0, 83.0]
    assert report.mean_std(values) == f"81.3 ± {np.std(values, ddof=1):.1f} (3 seeds)"
    assert report.mean_std([80.04]) == "80.0 (1 seed)"


def test_backbone_is_not_guessed(load):
    report = load("report")
    assert report.backbone({}) == "not recorded"
    assert report.backbone({"backbone_sha256": None}) == "not recorded"
    assert report.backbone({"backbone_sha256": "ab" * 32}) == "`" + "ab" * 6 + "`"


def test_unknown_table_is_an_error(load):
    report = load("report")
    with pytest.raises(KeyError, match="nope"):
        report.render("<!-- report:nope -->\n<!-- /report:nope -->", "")


def test_backbone_hash_names_the_weights(load, tmp_path):
    common = load("_common")
    a, b = tmp_path / "a" / "unet", tmp_path / "b" / "unet"
    for folder, content in ((a, b"weights"), (b, b"weights")):
        folder.mkdir(parents=True)
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(content)
        (folder / "config.json").write_text("{}")
    assert common.backbone_sha256(a.parent) == common.backbone_sha256(b.parent)
    (b / "config.json").write_text('{"other": 1}')  # configs are not weights
    assert common.backbone_sha256(a.parent) == common.backbone_sha256(b.parent)
    (b / "diffusion_pytorch_model.safetensors").write_bytes(b"other weights")
    assert common.backbone_sha256(a.parent) != common.backbone_sha256(b.parent)
    assert common.backbone_sha256("org/hub-id") is None
    assert common.backbone_source({"backbone": f"Backbone(source='{a.parent}', image_size=(64, 64))"}) == str(a.parent)
    assert common.backbone_source({"settings": {"model": None}}) is None




def test_a_figure_in_prose_follows_its_record(load, tmp_path, monkeypatch, capsys):
    """history.md and scaling.md quote figures inside sentences: a changed record makes those pages stale."""
    report = load("report")
    results = _copy_results(load, tmp_path, monkeypatch)
    record = json.loads((results / "distributed_predict.json").read_text())
    record["io"]["read_seconds_per_image"] = 0.5
    (results / "distributed_predict.json").write_text(json.dumps(record))
    assert report.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "scaling.md" in out and "0.5000 + " in out


def test_inline_figures_render_from_the_record(load):
    report = load("report")
    text = "took <!-- fig:dask.io -->typed by hand<!-- /fig --> on one core"
    assert report.render(text, "") == "took <!-- fig:dask.io -->0.0008 + 0.0010 s<!-- /fig --> on one core"
    scores = report.load("weizmann_n20")["rows"][0]["scores"]
    assert report.figure("w.weizmann_n20.ddpm.20") == report.mean_std(scores)
    with pytest.raises(KeyError, match="nope"):
        report.render("<!-- fig:nope -->1<!-- /fig -->", "")


def test_an_inline_marker_does_not_span_paragraphs(load):
    report = load("report")
    text = "a <!-- fig:dask.io -->\n\nnew paragraph <!-- /fig -->"
    assert report.render(text, "") == text  # left alone (unclosed in its paragraph), not swallowed


def test_every_page_figure_is_known(load):
    report = load("report")
    for page in report.PAGES:
        if page.is_file():
            for match in report.INLINE.finditer(page.read_text()):
                assert report.figure(match["key"]), f"{page.name}: {match['key']}"


def test_soak_outcome_claims_only_what_the_record_checked(load):
    """The security page's "every image has one whole label file" comes from the record's checks, not prose."""
    figures = load("_report_figures")
    complete = {"images": 500, "label_files": 500, "n_missing": 0, "n_broken": 0, "temporary_files_left": [],
                "every_image_exactly_one_whole_output": True,
                "labels_differing_from_quiet_run": {"pixel_fraction": 0.0, "images": 0}}
    assert figures._soak_outcome(complete).startswith("every one of the 500 images has exactly one whole label file")
    broken = {**complete, "label_files": 472, "n_missing": 28, "temporary_files_left": [".x.tmp"],
              "every_image_exactly_one_whole_output": False,
              "labels_differing_from_quiet_run": {"pixel_fraction": 1e-4, "images": 2}}
    text = figures._soak_outcome(broken)
    assert "every one" not in text and "28 missing" in text and "1 temporary file" in text
    assert "pixel for pixel" not in text


def test_self_training_gain_is_the_paired_fold_difference(load):
    figures = load("_report_figures")
    cv = {c["label"]: c["fold_miou"] for c in figures.load("self_training_weizmann")["cv"]}
    chosen = figures.load("self_training_weizmann")["chosen"]["best_self_training"]
    gains = np.subtract(cv[chosen], cv["rounds 0"])
    assert figures.figure("self_training.gain").endswith(
        "(fold gains " + ", ".join(f"{g:+.1f}" for g in gains) + ")")
    assert f"{gains.mean():+.2f} points" in figures.figure("self_training.gain")
