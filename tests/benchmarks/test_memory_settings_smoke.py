"""``memory.py --real`` (the paper's classifier settings) and ``--defaults`` run end to end on tiny sizes."""

import json

from .test_benchmarks_smoke import _run


def test_memory_real_settings(load, tmp_path):
    record = _run(load("memory"), tmp_path, "--real", "--cache-dir", str(tmp_path / "cache"))
    (run,) = record["runs"]
    n, side = run["n_images"], run["image_size"]
    assert run["max_pixels_per_image"] is None and run["training_pixels"] == n * side * side  # every pixel
    assert run["epochs_run"] == len(run["peak_rss_sampled_per_epoch"])
    # the reference's early stop (quick: patience 2) ends training inside an epoch from epoch 4 on
    assert all(e is None or e >= 4 for e in run["stop_epochs"]) and run["epochs_run"] >= 5
    assert all(b <= run["epoch_batches"] for b in run["batches_per_epoch"])
    assert run["history_bytes_per_batch"] > 0
    assert run["peak_rss"] >= max((v for v in run["peak_rss_sampled_per_epoch"] if v is not None), default=0)
    assert any((tmp_path / "cache").rglob("*.safetensors"))  # the activations went to the disk cache


def test_memory_defaults(load, tmp_path):
    out = tmp_path / "defaults.json"
    load("memory").main(["--defaults", "--quick", "--threads", "1", "--device", "cpu", "--out", str(out)])
    record = json.loads(out.read_text())
    run = record["run"]
    assert run["batch_size"] == "auto" and run["forward_batch_size"] >= 1
    assert record["target_met"] == (run["peak_rss"] <= record["target_bytes"])
