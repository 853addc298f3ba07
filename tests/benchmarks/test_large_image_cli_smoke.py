"""``benchmarks/large_image_cli.py --quick``: one image through ``sklearn-ddpm fit`` and ``predict --format zarr``.

Checks the script's output and the store it checked, never timings or memory: a smoke run's
numbers mean nothing.
"""

import json


def test_bar_counter_counts_the_redraws_of_each_bar(load):
    child_run = load("_child_run")
    bars = child_run.BarCounter(start=0.0)
    bars.feed("\rpredict:   0%|          | 0/1 [00:00<?, ?img/s]")
    assert bars.summary()["predict"]["last_count"] == 0  # a redraw counts when it arrives, not at the next one
    bars.feed("\n\x1b[A\rcollage.tif:  10%|#  | 1000/100")  # a redraw cut by the pipe: not counted yet
    assert "collage.tif" not in bars.summary()
    bars.feed("00 [00:10<01:30, 100row/s]\rcollage.tif:  20%|## | 2000/10000 [00:20<01:20]\r")
    bars.feed("predict: 100%|##########| 1/1 [01:40<00:00]\n")
    bars.close()
    summary = bars.summary()
    assert summary["collage.tif"]["total"] == 10000 and summary["collage.tif"]["distinct_counts_drawn"] == 2
    assert summary["collage.tif"]["moved_before_end"] is True
    assert summary["predict"]["moved_before_end"] is False and summary["predict"]["last_count"] == 1


def test_large_image_cli_quick(load, tmp_path, weizmann_root):
    large_image_cli = load("large_image_cli")
    out = tmp_path / "large_image_cli.json"
    assert large_image_cli.main(["--quick", "--threads", "1", "--out", str(out)]) == out
    record = json.loads(out.read_text())
    assert record["quick"] is True and record["image"]["side_px"] == large_image_cli.QUICK_SIZE
    assert record["fit"]["returncode"] == 0 and record["predict"]["returncode"] == 0
    assert record["predict"]["command"].startswith("sklearn-ddpm predict model.skddpm big -o out --format zarr "
                                                   "--probabilities")
    assert record["predict"]["cpu_seconds"] > 0 and record["predict"]["peak_rss_bytes_wait4"] > 0
    assert "predict" in record["predict"]["bars"]  # the bar over images was drawn
    zarr = record["zarr"]
    assert zarr["shapes_and_dtypes_as_expected"] and zarr["ome_version"] == "0.5"
    assert zarr["label_names"] == zarr["probability_channel_names"] == ["background", "horse"]
    assert zarr["class_names_as_fitted"] and sum(zarr["label_histogram"]) == large_image_cli.QUICK_SIZE ** 2
    assert zarr["first_chunk_row"]["probability_sum_max_abs_error"] < 5e-3  # float16
    label_nodes = [n for n in record["ome_zarr"]["nodes"] if "Label" in n["specs"]]
    names = [sorted(p["class"] for p in n["label_properties"].values()) for n in label_nodes]
    assert names == [["background", "horse"]]
    assert "compatible_readers" in record["napari"] or "error" in record["napari"]
    crop = record["crop_vs_in_process"]
    assert crop["whole_image"] and crop["label_agreement_fraction"] > 0.999  # the same image, the same tiles
