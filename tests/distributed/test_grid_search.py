"""``GridSearchCV`` on a Dask cluster through joblib's "dask" backend, with an activation cache on a shared disk."""

import re

import joblib
import numpy as np
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
    # joblib's dask backend runs in this process when the cluster has one task thread, e.g. while the
    # worker killed by test_faults restarts: wait for both.
    client.wait_for_workers(2, timeout=60)
    with joblib.parallel_backend("dask"):
        on_dask = _search(tiny_backbone, str(cache), n_jobs=2).fit(images, masks)
    # All 4 candidates x 2 folds ran on the cluster: joblib names its tasks "batch_of__fit_and_score_<n>_calls-...",
    # and the scheduler counts the tasks of every name prefix that reached memory (finished).
    finished = client.run_on_scheduler(
        lambda dask_scheduler: {name: p.state_counts["memory"] for name, p in dask_scheduler.task_prefixes.items()})
    fits = {re.fullmatch(r"batch_of__fit_and_score_(\d+)_calls", name): count for name, count in finished.items()}
    assert sum(int(m.group(1)) * count for m, count in fits.items() if m) == 8
    # The workers' processes, not this one, filled the cache folder they share.
    assert any(cache.rglob("*.safetensors"))
    local = _search(tiny_backbone, None, n_jobs=1).fit(images, masks)
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
