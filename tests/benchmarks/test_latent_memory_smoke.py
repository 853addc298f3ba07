"""Smoke test of benchmarks/latent_memory.py: the tiny configuration, and the real SD-1.5 block map."""

import json

import pytest

pytest.importorskip("transformers")


def test_latent_memory_quick(load, tmp_path):
    record = load("latent_memory").main(["--quick", "--out", str(tmp_path / "x.json")])
    assert json.loads((tmp_path / "x.json").read_text())["quick"] is True
    assert record["latent_size"] == 64 and len(record["decoder_blocks"]) == 12
    # SD layout: 4 up-blocks of 3 resnets; block 5 (DIFT's up_ft_index=1) is up_blocks.1 after its upsampler
    assert record["decoder_blocks"][5]["module"] == "up_blocks.1.upsamplers.0"
    assert record["decoder_blocks"][5]["resolution"] == [32, 32]
    assert record["features_per_image_float16"]["dift"]["bytes"] == 2 * 128 * 32 * 32
    assert record["estimate"]["gpu_bytes_unet_half_plus_batch"] > record["weights_bytes"]["unet_half"]
