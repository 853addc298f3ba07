"""benchmarks/select_settings.py runs end to end on tiny settings (its figures are not checked here)."""

import json


def test_select_settings_quick(tmp_path, load):
    script = load("select_settings")
    out = tmp_path / "s.json"
    assert script.main(["--quick", "--threads", "1", "--out", str(out)]) == out
    record = json.loads(out.read_text())
    selection = record["selection"]
    table = selection["cv_results"]
    # the CV table that made the choice, and the choice is its best row
    assert selection["best_score"] == max(table["mean_test_score"])
    assert {f["method"] for f in record["test_fits"]} == {"selected", "defaults"}
    assert set(record["summary"]["selected"]["per_class_iou"]) == {"background", "horse"}
