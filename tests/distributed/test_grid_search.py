"""``GridSearchCV`` on a Dask cluster through joblib's "dask" backend, with an activation cache on a shared disk."""

import joblib
import numpy as np
from distributed import get_task_stream
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier

from ..conftest import make_squares


def _search(backbone, memory, n_jobs):
    pipe = Pipeline([
        ("features", DDPMFeatureTransformer(backbone, memory=memory, batch_size=2)),
        ("clf", MLPEnsembleClassifier(n_estimators=2, max_epochs=2, patience=None, batch_size=128,
                                      max_pixels_per_image=300, random_state=0)),
    ])
    return GridSearchCV(pipe, {"features__blocks": [(3,), (3, 6)], "features__steps": [(50,), (50, 250)]},
                        cv=KFold(2), refit=False, n_jobs=n_jobs, error_score="raise")


def test_grid_search_on_dask_scores_as_in_one_process(tiny_backbone, client, tmp_path):
    images, masks = make_squares(n_images=4)
    cache = tmp_path / "activations"
    with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_dask = _search(tiny_backbone, str(cache), n_jobs=2).fit(images, masks)
    assert len(tasks.data) >= 8  # 4 candidates x 2 folds ran on the cluster's workers
    # The workers' processes, not this one, filled the cache folder they share.
    assert any(cache.rglob("*.safetensors"))
    local = _search(tiny_backbone, None, n_jobs=1).fit(images, masks)
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
