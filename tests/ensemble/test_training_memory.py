"""The classifier's per-epoch bookkeeping stays small at the paper's pixel counts; small pixel sets are gathered once."""

import numpy as np
import pytest
import torch

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.ensemble._net import MemberPixelDataset
from sklearn_ddpm.ensemble._pixels import PixelTable

from ..conftest import make_squares


def _dataset(n, seeds, **kwargs):
    table = PixelTable.from_matrix(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    zeros = np.zeros(n, np.int64)
    return MemberPixelDataset(table, zeros, np.arange(n), zeros, np.arange(n) % 3, seeds, **kwargs)


def test_member_orders_are_numpy_permutations_in_one_int32_buffer():
    seeds = [3, 7, 11]
    dataset = _dataset(1000, seeds)
    rngs = [np.random.default_rng(s) for s in seeds]
    dataset.new_epoch()
    buffer = dataset.order
    for _ in range(2):  # every epoch: each member's next permutation, written into the same array
        expected = np.stack([rng.permutation(1000) for rng in rngs])
        np.testing.assert_array_equal(dataset.order, expected)
        assert dataset.order.dtype == np.int32 and dataset.order is buffer
        dataset.new_epoch()


@pytest.mark.parametrize("gather_once_bytes", [0, 2**20])
def test_batches_follow_each_members_order(gather_once_bytes):
    # 0 bytes: features gathered batch by batch; 1 MiB: all 50 pixels gathered once, at the start
    dataset = _dataset(50, [0, 1], gather_once_bytes=gather_once_bytes)
    assert (dataset.features is None) == (gather_once_bytes == 0)
    dataset.new_epoch()
    features, labels = dataset.__getitems__([4, 9])
    assert features.shape == (2, 2, 2) and labels.shape == (2, 2)
    for row, i in enumerate([4, 9]):
        for member in range(2):
            pixel = int(dataset.order[member, i])
            assert features[row, member].tolist() == [2 * pixel, 2 * pixel + 1]
            assert labels[row, member].item() == pixel % 3


def test_features_gathered_once_are_the_batch_by_batch_ones(tiny_backbone):
    images, masks = make_squares(3, size=(24, 32))
    table = PixelTable.from_input(DDPMFeatureTransformer(tiny_backbone, blocks=(6, 9), steps=(50,)).fit_transform(images))
    rng = np.random.default_rng(0)
    image_index, ys, xs = rng.integers(0, 3, 40), rng.integers(0, 24, 40), rng.integers(0, 32, 40)
    standardization = (rng.random(table.n_features), 1 + rng.random(table.n_features))
    once, per_batch = (MemberPixelDataset(table, image_index, ys, xs, np.zeros(40), [5, 6], standardization,
                                          gather_once_bytes=budget) for budget in (2**30, 0))
    assert once.features is not None and per_batch.features is None
    for dataset in (once, per_batch):
        dataset.new_epoch()
    for batch in ([0, 1, 2], list(range(3, 40))):
        torch.testing.assert_close(once.__getitems__(batch)[0], per_batch.__getitems__(batch)[0], rtol=0, atol=0)
