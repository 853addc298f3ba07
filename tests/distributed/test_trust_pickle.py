"""Dask prediction reads the safe model format; a pickle model needs ``trust_pickle`` and is refused before any worker."""

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image

from sklearn_ddpm import load_segmenter
from sklearn_ddpm.distributed import predict_folder
from sklearn_ddpm.io import UnsafeModelFileError


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "the payload ran"))


def _labels(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(Path(folder).glob("*.png"))}


def test_a_crafted_pickle_is_refused_before_the_workers(image_dir, client, tmp_path):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UnsafeModelFileError, match="evil.joblib is a pickle file"):
        predict_folder(evil, image_dir, tmp_path / "out", client=client, progress=False)
    assert not marker.exists() and not list((tmp_path / "out").glob("*.png"))


def test_trusted_joblib_and_in_memory_pipelines_give_the_safe_files_labels(segmenter_file, image_dir, client,
                                                                            tmp_path):
    predict_folder(segmenter_file, image_dir, tmp_path / "safe", client=client, images_per_task=4, progress=False)
    pipeline = load_segmenter(segmenter_file)
    joblib.dump(pipeline, tmp_path / "seg.joblib")
    predict_folder(tmp_path / "seg.joblib", image_dir, tmp_path / "trusted", client=client, images_per_task=4,
                   progress=False, trust_pickle=True)
    # an in-memory pipeline travels to the workers in the safe format
    predict_folder(pipeline, image_dir, tmp_path / "memory", client=client, images_per_task=4, progress=False)
    expected = _labels(tmp_path / "safe")
    assert len(expected) == len(list(Path(image_dir).iterdir()))
    for other in ("trusted", "memory"):
        got = _labels(tmp_path / other)
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])
