"""``predict_folder`` and ``sklearn-ddpm predict --workers/--scheduler`` on a local Dask cluster."""

import shutil

import numpy as np
import torch

from sklearn_ddpm.cli import main
from sklearn_ddpm.datasets import read_mask
from sklearn_ddpm.distributed import predict_folder
from sklearn_ddpm.distributed._predict import _torch_threads_per_host, _usable_cores

from ._spy import WorkerSpy, read_log
from .conftest import N_IMAGES

QUIET = ["--quiet", "--threads", "1"]


def _outputs(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_dask_label_maps_equal_in_process_predict(segmenter_file, image_dir, client, tmp_path):
    names = sorted(p.stem for p in image_dir.iterdir())
    assert main(["predict", str(segmenter_file), str(image_dir), "-o", str(tmp_path / "local"), "--uncertainty",
                 *QUIET]) == 0
    # Tasks of 3 images with passes of 2: other batches than the in-process run's.
    summary = predict_folder(segmenter_file, image_dir, tmp_path / "dask", client=client, images_per_task=3,
                             uncertainty=True, progress=False)
    assert sorted(summary.written) == sorted(f"{n}.png" for n in names)
    assert summary.skipped == [] and summary.failed == []
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "local")
    for name in names:
        np.testing.assert_array_equal(read_mask(tmp_path / "dask" / f"{name}.png"),
                                      read_mask(tmp_path / "local" / f"{name}.png"))
        # The MLPs see other batches of pixels: float32 sums in another order, ~1e-7 apart.
        np.testing.assert_allclose(np.load(tmp_path / "dask" / "uncertainty" / f"{name}.npy"),
                                   np.load(tmp_path / "local" / "uncertainty" / f"{name}.npy"), rtol=0, atol=1e-6)


def test_each_worker_loads_the_model_once(segmenter_file, image_dir, client, tmp_path):
    log = tmp_path / "log"
    client.register_plugin(WorkerSpy(log), name="spy")
    try:
        predict_folder(segmenter_file, image_dir, tmp_path / "out", client=client, images_per_task=1, progress=False)
    finally:
        client.unregister_worker_plugin("spy")
    loads, writes = read_log(log)
    assert len(writes) == N_IMAGES  # 7 tasks of one image ...
    assert len(loads) == len(client.scheduler_info()["workers"]) == 2  # ... and one load per worker


def test_a_bad_image_is_recorded_and_the_run_goes_on(segmenter_file, image_dir, client, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(image_dir, folder)
    (folder / "broken.png").write_bytes(b"not a png")
    summary = predict_folder(segmenter_file, folder, tmp_path / "out", client=client, images_per_task=3,
                             progress=False)
    assert len(summary.written) == N_IMAGES
    assert [file for file, _ in summary.failed] == [str(folder / "broken.png")]
    assert "broken.png" in summary.failed[0][1] or "identify" in summary.failed[0][1]
    assert not (tmp_path / "out" / "broken.png").exists()


def test_resume_only_redoes_missing_outputs(segmenter_file, image_dir, client, tmp_path):
    out = tmp_path / "out"
    predict_folder(segmenter_file, image_dir, out, client=client, images_per_task=3, progress=False)
    files = sorted(out.glob("*.png"))
    files[0].unlink()
    stamps = {p: p.stat().st_mtime_ns for p in files[1:]}
    summary = predict_folder(segmenter_file, image_dir, out, client=client, resume=True, progress=False)
    assert summary.written == [files[0].name] and len(summary.skipped) == N_IMAGES - 1
    assert files[0].is_file() and {p: p.stat().st_mtime_ns for p in files[1:]} == stamps


def test_torch_threads_share_the_cores(segmenter_file, image_dir, client, tmp_path):
    # Two one-thread workers on this machine: its cores, halved.
    assert _torch_threads_per_host(client) == {"127.0.0.1": max(1, _usable_cores() // 2)}
    predict_folder(segmenter_file, image_dir, tmp_path / "out", client=client, torch_threads=3, progress=False,
                   only=["img0"])
    assert set(client.run(torch.get_num_threads).values()) == {3}


def test_cli_workers_and_scheduler(segmenter_file, image_dir, client, tmp_path, capsys):
    assert main(["predict", str(segmenter_file), str(image_dir), "-o", str(tmp_path / "a"), "--workers", "1",
                 "--images-per-task", "4", "--threads", "1"]) == 0
    assert f"Wrote predictions for {N_IMAGES} images" in capsys.readouterr().out
    assert main(["predict", str(segmenter_file), str(image_dir), "-o", str(tmp_path / "b"), "--overlay",
                 "--scheduler", client.scheduler.address, *QUIET]) == 0
    assert len(list((tmp_path / "a").glob("*.png"))) == N_IMAGES
    assert len(list((tmp_path / "b" / "overlay").glob("*.png"))) == N_IMAGES
