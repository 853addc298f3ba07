"""A Dask worker that dies in the middle of ``predict_folder``: the run still writes every file once, whole."""

from pathlib import Path

import numpy as np
from PIL import Image

from sklearn_ddpm.cli import main
from sklearn_ddpm.datasets import read_mask
from sklearn_ddpm.distributed import predict_folder

from ._spy import WorkerSpy, read_log
from .conftest import N_IMAGES


def test_a_worker_killed_mid_image_loses_nothing_and_writes_nothing_twice(segmenter_file, image_dir, client,
                                                                          tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    names = sorted(p.stem for p in image_dir.iterdir())
    # Two files per image (labels, overlay): the third write leaves its image half done when its worker dies.
    client.register_plugin(WorkerSpy(log, kill_after=3), name="killer")
    try:
        summary = predict_folder(segmenter_file, image_dir, out, client=client, images_per_task=2, overlay=True,
                                 progress=False)
    finally:
        client.unregister_worker_plugin("killer")
    assert Path(f"{log}.killed").exists()  # a worker did die

    assert sorted(summary.written) == sorted(f"{n}.png" for n in names) and summary.failed == []
    loads, writes = read_log(log)
    expected = [str(out / f"{n}.png") for n in names] + [str(out / "overlay" / f"{n}.png") for n in names]
    assert sorted(writes) == sorted(expected)  # every file written, none twice
    assert len(loads) >= 2
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []
    # Whole files with the right content: the same label maps as an uninterrupted in-process run.
    assert main(["predict", str(segmenter_file), str(image_dir), "-o", str(tmp_path / "local"), "--quiet",
                 "--threads", "1"]) == 0
    for name in names:
        np.testing.assert_array_equal(read_mask(out / f"{name}.png"), read_mask(tmp_path / "local" / f"{name}.png"))
        Image.open(out / "overlay" / f"{name}.png").load()  # decodes to the end
    assert len(names) == N_IMAGES
