"""The reference's early stop, rule by rule: from epoch 4, a member stops once its batch loss has not
improved on its best for more than 50 iterations; the others train on; fit ends when all have stopped."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sklearn_ddpm import MLPEnsembleClassifier
from sklearn_ddpm.ensemble import ReferenceEarlyStopping
from sklearn_ddpm.utils._skorch import EarlyStop


class _Module:
    n_members = 2

    def member_state(self, m):
        return f"state of member {m}"


class _Net:
    """What the callback reads: the history's length (epochs begun) and each member's last batch loss."""

    def __init__(self):
        self.history, self.module_ = [], _Module()

    def epoch(self):
        self.history.append({})

    def batch(self, callback, losses):
        self.member_losses_ = torch.tensor(losses)
        callback.on_batch_end(self, training=True)


def test_a_member_stops_after_more_than_50_iterations_without_improvement():
    callback, net = ReferenceEarlyStopping(), _Net()  # the reference's defaults: 50 iterations, from epoch 4
    assert (callback.patience, callback.start_epoch) == (50, 4)
    callback.on_train_begin(net)
    for _ in range(4):  # epochs 0-3: no stopping, whatever the losses do
        net.epoch()
        for _ in range(100):
            net.batch(callback, [1.0, 1.0])
    assert callback.stop_epoch_ == [None, None]
    net.epoch()  # epoch 4: member 0 sets its best, then 50 iterations without improvement
    net.batch(callback, [0.5, 0.5])
    improving = 0.5
    for _ in range(50):
        improving *= 0.99
        net.batch(callback, [0.5, improving])
    assert callback.stop_epoch_ == [None, None] and callback.count_[0] == 50  # 50 is not more than 50
    improving *= 0.99
    net.batch(callback, [0.6, improving])  # the 51st: member 0 stops, member 1 (improving) trains on
    assert callback.stop_epoch_ == [4, None]
    assert callback.frozen_[0] == "state of member 0"
    # member 0's count no longer moves; member 1 stops 51 iterations after its last improvement,
    # which ends the fit
    with pytest.raises(EarlyStop):
        for _ in range(51):
            net.batch(callback, [0.1, 1.0])
    assert callback.stop_epoch_ == [4, 4] and callback.count_[0] == 51


def test_an_improvement_restarts_the_count():
    callback, net = ReferenceEarlyStopping(patience=50, start_epoch=0), _Net()
    callback.on_train_begin(net)
    net.epoch()
    net.batch(callback, [1.0, 1.0])
    for _ in range(50):
        net.batch(callback, [1.0, 1.0])
    net.batch(callback, [0.9, 0.9])  # an improvement at the 51st: both start over
    assert callback.count_ == [0, 0]
    for _ in range(50):
        net.batch(callback, [0.95, 0.95])
    assert callback.stop_epoch_ == [None, None]


def test_the_classifier_applies_the_rule_at_batch_64():
    X, y = make_classification(n_samples=640, random_state=0)  # 10 iterations per epoch at batch 64
    clf = MLPEnsembleClassifier(n_estimators=2, random_state=0, max_epochs=200).fit(X.astype(np.float32), y)
    assert (clf.patience_, clf.min_epochs_) == (50, 4)
    stopper = next(cb for _, cb in clf.net_.callbacks_ if isinstance(cb, ReferenceEarlyStopping))
    assert (stopper.patience, stopper.start_epoch) == (50, 4)
    # a member can stop only in an epoch >= 4, and only once more than 50 iterations (5 epochs here)
    # have passed since epoch 4 began, so at epoch 9 at the earliest
    assert all(e is not None and e >= 4 + 5 for e in clf.stop_epochs_)
    assert len(clf.net_.history) <= 200
