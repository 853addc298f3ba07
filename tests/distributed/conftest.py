"""A tiny fitted segmenter file, a folder of small images, and a local Dask cluster of 2 processes."""

import distributed
import pytest
from PIL import Image

from sklearn_ddpm import make_segmenter, save_segmenter

from ..conftest import make_squares

N_IMAGES = 7  # odd, so that tasks of 2 or 3 images leave a short last task


@pytest.fixture(scope="package")
def segmenter_file(tmp_path_factory, tiny_backbone):
    images, masks = make_squares(n_images=4, seed=1)
    pipeline = make_segmenter(tiny_backbone, blocks=(3, 6), steps=(50,), batch_size=2, n_estimators=2, max_epochs=2,
                              max_pixels_per_image=300, max_pixels_per_class=None)
    pipeline.fit(images, masks)
    return save_segmenter(pipeline, tmp_path_factory.mktemp("model") / "seg.skddpm")


@pytest.fixture(scope="package")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    images, _ = make_squares(n_images=N_IMAGES, size=(40, 48), seed=2)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="package")
def client():
    # Processes, as predict_folder's own cluster: the model and the tasks cross a pickle boundary.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client
