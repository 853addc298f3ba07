"""MLPEnsembleClassifier(callbacks=...): extra skorch callbacks, routed and validated as in skorch."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback, LRScheduler

from sklearn_ddpm import MLPEnsembleClassifier

X, y = make_classification(n_samples=200, random_state=0)


class LrRecorder(Callback):
    """The optimizer's learning rate at every training batch."""

    def on_train_begin(self, net, **kwargs):
        self.lrs_ = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.lrs_.append(net.optimizer_.param_groups[0]["lr"])


def _warmup(start_factor=0.1):
    return LRScheduler(policy=torch.optim.lr_scheduler.LinearLR, step_every="batch", start_factor=start_factor,
                       total_iters=4)


def _fit(**params):
    return MLPEnsembleClassifier(n_estimators=2, max_epochs=2, batch_size=32, random_state=0, **params).fit(X, y)


def test_an_added_warmup_schedules_the_learning_rate():
    callbacks = [("warmup", _warmup()), ("lrs", LrRecorder())]
    clf = _fit(callbacks=callbacks)
    lrs = dict(clf.net_.callbacks_)["lrs"].lrs_
    np.testing.assert_allclose(lrs[:5], [1e-4, 3.25e-4, 5.5e-4, 7.75e-4, 1e-3], rtol=1e-6)
    assert lrs[-1] == pytest.approx(1e-3)
    # the estimator's own callbacks still run, the given ones stay unfitted (the fit trained copies)
    assert "reference_early_stopping" in dict(clf.net_.callbacks_)
    assert not hasattr(callbacks[1][1], "lrs_")
    # without the warm-up: the plain lr, and other weights
    plain = _fit(callbacks=[("lrs", LrRecorder())])
    assert set(dict(plain.net_.callbacks_)["lrs"].lrs_) == {1e-3}
    assert not np.array_equal(plain.predict_proba(X), clf.predict_proba(X))


def test_callback_parameters_are_routed_and_searchable():
    clf = _fit(callbacks=[("warmup", _warmup()), ("lrs", LrRecorder())], callbacks__warmup__start_factor=0.5)
    assert dict(clf.net_.callbacks_)["lrs"].lrs_[0] == pytest.approx(5e-4)
    search = GridSearchCV(MLPEnsembleClassifier(n_estimators=2, max_epochs=1, callbacks=[("warmup", _warmup())]),
                          {"callbacks__warmup__start_factor": [0.1, 0.5]}, cv=2).fit(X, y)
    assert search.best_params_["callbacks__warmup__start_factor"] in (0.1, 0.5)
    # a clone copies the callbacks with the same parameters
    original = MLPEnsembleClassifier(callbacks=[("warmup", _warmup(0.3))])
    copy = clone(original)
    assert copy.callbacks[0][1] is not original.callbacks[0][1]
    assert copy.callbacks[0][1].kwargs["start_factor"] == 0.3


def test_callback_classes_are_instantiated_as_in_skorch():
    clf = _fit(callbacks=[LrRecorder])
    assert len(dict(clf.net_.callbacks_)["LrRecorder"].lrs_) > 0


@pytest.mark.parametrize("callbacks, error, message", [
    ("warmup", InvalidParameterError, "callbacks"),
    ([1], TypeError, "skorch callbacks"),
    ([("warmup", "not a callback")], TypeError, "skorch callbacks"),
    ([(1, LrRecorder())], TypeError, "name must be a str"),
    ([("reference_early_stopping", LrRecorder())], ValueError, "estimator's own"),
])
def test_bad_callbacks_are_refused_in_fit(callbacks, error, message):
    clf = MLPEnsembleClassifier(n_estimators=2, max_epochs=1, callbacks=callbacks)  # __init__ only stores
    with pytest.raises(error, match=message):
        clf.fit(X, y)
