"""The synthetic-data benchmark (Table 3) runs end to end on tiny settings (its figures are not checked here)."""

import json


def test_synthetic_quick(tmp_path, load, weizmann_root):
    synthetic = load("synthetic")
    out = tmp_path / "s.json"
    payload = synthetic.main(["--quick", "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    record = json.loads(out.read_text())
    assert [r["method"] for r in record["summary"]] == ["DDPM on real", "DDPM on synthetic", "DatasetDDPM"]
    assert all(0 <= r["miou_mean"] <= 100 for r in payload["summary"])
    assert record["throughput_ratio_network_vs_ddpm"]["mean"] > 0 and "ddof=1" in record["miou_std"]
    # a rerun draws no sample and reuses the finished seed's rows
    again = synthetic.main(["--quick", "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out",
                            str(tmp_path / "again.json"), "--probe-samples", "0"])
    assert again["rows"] == payload["rows"]
    assert again["samples"]["seconds_this_run"] < payload["samples"]["seconds_this_run"]
    # --quick runs one seed: no spread to state (the std itself is _common.mean_sample_std's, tested with
    # several values in test_benchmarks_smoke.py; weizmann's smoke test runs two seeds)
    for row in payload["summary"]:
        assert len(row["scores"]) == 1 and row["miou_std"] is None
