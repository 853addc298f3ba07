"""benchmarks/nan_dead_units.py end to end on a crop of two CCP photos (figures not checked)."""


def test_nan_dead_units_quick_run_records_dead_units_and_no_nan(tmp_path, load, ccp_root):
    bench = load("nan_dead_units")
    record = bench.main(["--quick", "--threads", "1", "--out", str(tmp_path / "n.json")])
    fit = record["fit_2_members"]
    for layer in fit["dead_units"]:
        assert len(layer["running_var_below_1e-12"]) == len(layer["relu_zero_on_all_pixels"]) == 2
    assert fit["held_out_summary"]["current_predict_proba_nan_fraction"] == 0
    curves = record["dynamics"]["variants"]
    assert set(curves) == {"reference", "standardized"}
    assert all(c["curve"][0]["step"] == 0 and c["curve"][-1]["step"] == c["steps"] for c in curves.values())
