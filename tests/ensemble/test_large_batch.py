"""Ghost batch normalization of the batched ensemble, and the warm-up of the large-batch benchmark."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sklearn_ddpm.ensemble._module import BatchedMLPEnsemble


def _module(ghost_batch):
    return BatchedMLPEnsemble(2, 5, 3, hidden=(4,), seeds=[0, 1], ghost_batch=ghost_batch).train()


def test_ghost_batch_normalizes_each_slice_with_its_own_statistics():
    x = torch.randn(10, 2, 5, generator=torch.Generator().manual_seed(0))
    ghost, plain = _module(4), _module(None)
    out = ghost(x)
    # by hand: first layer, ReLU, then BatchNorm over samples 0-3, 4-7 and 8-9 separately
    h = torch.relu(torch.matmul(x.transpose(0, 1), plain.weights[0]) + plain.biases[0][:, None, :])
    flat = h.permute(1, 0, 2).reshape(10, -1)
    normed = torch.cat([F.batch_norm(part, None, None, training=True) for part in flat.split(4)])
    h = normed.reshape(10, 2, 4).permute(1, 0, 2)
    expected = (torch.matmul(h, plain.weights[1]) + plain.biases[1][:, None, :]).permute(1, 0, 2)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, plain(x))  # whole-batch statistics differ


@pytest.mark.parametrize("ghost_batch", [10, 64])
def test_ghost_batch_not_below_the_batch_is_plain_batch_norm(ghost_batch):
    x = torch.randn(10, 2, 5, generator=torch.Generator().manual_seed(1))
    ghost, plain = _module(ghost_batch), _module(None)
    torch.testing.assert_close(ghost(x), plain(x))
    torch.testing.assert_close(ghost.norms[0].running_mean, plain.norms[0].running_mean)


def test_ghost_batch_tail_of_one_sample_uses_the_running_statistics():
    x = torch.randn(9, 2, 5, generator=torch.Generator().manual_seed(3))  # slices of 4, 4 and 1
    ghost, plain = _module(4), _module(None)
    norm = ghost.norms[0]
    with torch.no_grad():  # running statistics far from the batch's, so using them shows in the output
        norm.running_mean.fill_(0.5)
        norm.running_var.fill_(2.0)
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    out = ghost(x)
    # by hand: the two full slices normalize with their own statistics and update the running ones in
    # turn; the single last sample is normalized with the running statistics as updated by them
    h = torch.relu(torch.matmul(x.transpose(0, 1), plain.weights[0]) + plain.biases[0][:, None, :])
    flat = h.permute(1, 0, 2).reshape(9, -1)
    parts = [F.batch_norm(part, mean, var, training=True, momentum=norm.momentum, eps=norm.eps)
             for part in flat[:8].split(4)]
    tail = (flat[8:] - mean) / torch.sqrt(var + norm.eps)
    h = torch.cat(parts + [tail]).reshape(9, 2, 4).permute(1, 0, 2)
    expected = (torch.matmul(h, plain.weights[1]) + plain.biases[1][:, None, :]).permute(1, 0, 2)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(norm.running_mean, mean)  # the tail did not update the running statistics
    # with batch statistics the lone sample would normalize to the bias alone: not what happened
    assert not torch.allclose(out[8], plain.biases[1] + torch.zeros_like(out[8]))


def test_classifier_routes_ghost_batch_to_the_module():
    from sklearn.datasets import make_classification

    from sklearn_ddpm import MLPEnsembleClassifier

    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    clf = MLPEnsembleClassifier(n_estimators=2, batch_size=128, max_epochs=2, random_state=0,
                                module__ghost_batch=32).fit(X.astype(np.float32), y)
    assert clf.net_.module_.ghost_batch == 32


@pytest.mark.parametrize("batch", [64, 70, 65])  # whole slices, a short last slice, a last slice of one row
def test_ghost_batch_norm_equals_batch_norm_slice_by_slice(batch):
    from sklearn_ddpm.ensemble._module import ghost_batch_norm

    x = torch.randn(batch, 6, generator=torch.Generator().manual_seed(2)) * 3 + 1
    fast, slow = torch.nn.BatchNorm1d(6), torch.nn.BatchNorm1d(6)
    for norm in (fast, slow):
        norm.running_mean.fill_(0.5)
        norm.weight.data.uniform_(0.5, 2)
    slow.load_state_dict(fast.state_dict())
    out = ghost_batch_norm(x, fast, 16)
    expected = torch.cat([
        F.batch_norm(part, slow.running_mean, slow.running_var, slow.weight, slow.bias, training=len(part) > 1,
                     momentum=slow.momentum, eps=slow.eps)
        for part in x.split(16)
    ])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(fast.running_mean, slow.running_mean)
    torch.testing.assert_close(fast.running_var, slow.running_var)
