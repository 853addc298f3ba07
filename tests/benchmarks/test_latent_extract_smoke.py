"""Smoke test of benchmarks/latent_extract.py on tiny SD-shaped components."""

import pytest
import torch

pytest.importorskip("transformers")


def test_latent_extract_quick(load, tmp_path):
    record = load("latent_extract").main(["--quick", "--device", "cpu", "--threads", "1",
                                          "--out", str(tmp_path / "x.json")])
    rows = {row["preset"]: row for row in record["rows"]}
    assert rows["dift"]["blocks"] == [5] and rows["dift"]["unet_forwards_per_image"] == 8
    assert rows["paper"]["unet_forwards_per_image"] == 3
    assert all(row["seconds_per_image"] > 0 and row["feature_bytes_per_image"] > 0 for row in rows.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU report")
def test_latent_extract_without_gpu_is_reported(load, tmp_path):
    load("latent_extract").main(["--device", "cuda", "--out", str(tmp_path / "x.json")])
    assert "no GPU" in (tmp_path / "x.json").read_text()
