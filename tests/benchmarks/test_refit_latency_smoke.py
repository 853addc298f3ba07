"""The refit latency benchmark runs end to end on tiny settings (its timings are not checked here)."""


def test_refit_latency_quick(tmp_path, load):
    payload = load("refit_latency").main(["--quick", "--threads", "1", "--out", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").is_file()
    assert [r["backbone"].split()[0] for r in payload["results"]] == ["bundled", "ADM-256"]
    for result in payload["results"]:
        assert result["unet_forward_passes_during_refits"] == 0
        assert len(result["rounds"]) == 2 and result["first_extraction_s"] > 0
        labelled = [r["labelled_pixels"] for r in result["rounds"]]
        assert labelled == sorted(labelled) and labelled[0] > 0
