"""The classifier's per-epoch bookkeeping stays small at the paper's pixel counts."""

import numpy as np

from sklearn_ddpm.ensemble._net import MemberPixelDataset
from sklearn_ddpm.ensemble._pixels import PixelTable


def _dataset(n, seeds):
    table = PixelTable.from_matrix(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    zeros = np.zeros(n, np.int64)
    return MemberPixelDataset(table, zeros, np.arange(n), zeros, np.arange(n) % 3, seeds)


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


def test_batches_follow_each_members_order():
    dataset = _dataset(50, [0, 1])
    dataset.new_epoch()
    features, labels = dataset.__getitems__([4, 9])
    assert features.shape == (2, 2, 2) and labels.shape == (2, 2)
    for row, i in enumerate([4, 9]):
        for member in range(2):
            pixel = int(dataset.order[member, i])
            assert features[row, member].tolist() == [2 * pixel, 2 * pixel + 1]
            assert labels[row, member].item() == pixel % 3
