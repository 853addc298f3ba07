"""The skorch side of the ensemble: the net, its pixel dataset and the reference's early stop."""

import math

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.data import Dataset

from ..utils._skorch import EarlyStop, InterruptibleNet


#: Training pixels whose float32 features fit in this many bytes are gathered once, at the
#: start: re-sampling them from the compact maps for every batch took more time than the members'
#: steps (the demo's fit, 10 x 1000 pixels of 1056 features, 42 MB: 1.6x faster). Larger sets,
#: such as the paper's 3.28 M pixels, are still gathered batch by batch.
GATHER_ONCE_BYTES = 256 * 2**20


def collate_identity(batch):
    """The dataset already returns whole batches (``__getitems__``)."""
    return batch


class MemberPixelDataset(Dataset):
    """Training pixels, served so that every member walks its own shuffled order.

    Item ``i`` of a batch is, for member ``m``, pixel ``order[m][i]`` of a permutation drawn from
    member ``m``'s own generator each epoch: member ``m`` sees exactly the batches it would see
    if it were trained alone with that seed, as in the reference's one-model-at-a-time loop.
    With ``standardization = (mean, scale)`` the features are served as ``(x - mean) / scale``.
    Up to ``gather_once_bytes`` of features are gathered (and standardized) once, when the dataset
    is made; the batches hold the same numbers either way. ``dtype`` is the served features'
    type: a net training under bfloat16 autocast casts its input to bfloat16 in the first matmul
    anyway, so storing them as bfloat16 gives the same numbers in half the memory (and gathers
    twice as many pixels at once).
    """

    def __init__(self, table, image_index, ys, xs, labels, order_seeds, standardization=None,
                 gather_once_bytes=GATHER_ONCE_BYTES, dtype=torch.float32):
        self.table = table
        self.shift, self.scale = (None, None) if standardization is None else (
            torch.as_tensor(s, dtype=torch.float32) for s in standardization)
        self.image_index, self.ys, self.xs = image_index, ys, xs
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.rngs = [np.random.default_rng(seed) for seed in order_seeds]
        self.order = None
        self.features = None
        self.dtype = dtype
        if len(self.labels) * table.n_features * dtype.itemsize <= gather_once_bytes:
            self.features = self._standardized(table.gather(image_index, ys, xs))

    def new_epoch(self):
        # One (members, pixels) array for all epochs, filled a member at a time: at the paper's
        # 3.28 M pixels and 10 members an int64 stack of fresh permutations held 0.26 GB, and
        # twice that while it was built. The values are numpy's permutations, whatever the dtype.
        n = len(self.labels)
        if self.order is None:
            self.order = np.empty((len(self.rngs), n), dtype=np.int32 if n < 2**31 else np.int64)
        for member, rng in enumerate(self.rngs):
            self.order[member] = rng.permutation(n)

    def __len__(self):
        return len(self.labels)

    def __getitems__(self, indices):
        if self.order is None:
            self.new_epoch()
        picked = self.order[:, np.asarray(indices)].T  # (B, M)
        flat = picked.reshape(-1).astype(np.int64)
        if self.features is not None:
            features = self.features.index_select(0, torch.from_numpy(flat))
        else:
            features = self._standardized(self.table.gather(self.image_index[flat], self.ys[flat], self.xs[flat]))
        batch, members = picked.shape
        return features.reshape(batch, members, -1), self.labels[flat].reshape(batch, members)

    def _standardized(self, features):
        features = features if self.shift is None else (features - self.shift) / self.scale
        return features.to(self.dtype)

    def __getitem__(self, index):
        return self.__getitems__([index])


class EnsembleNet(InterruptibleNet):
    """A skorch ``NeuralNet`` whose loss is the sum of the members' losses.

    The criterion (``criterion_``, e.g. ``CrossEntropyLoss(reduction="none", weight=...)``) gives
    one loss per (pixel, member); each member's loss is their mean, weighted by the criterion's
    class ``weight`` if it has one (``sum(w * l) / sum(w)``, as ``CrossEntropyLoss`` reduces with
    "mean"). Summing over members keeps each member's gradient equal to the gradient of its own
    loss; the per-member values are kept in ``member_losses_`` for :class:`ReferenceEarlyStopping`.

    ``autocast_dtype`` (None, "bfloat16" or "float16"; a name, so that the safe model format
    stores it) runs the module's forward under ``torch.autocast`` in that type, and so its
    backward too; the loss is taken in float32. skorch has no autocast option (its routed
    parameters cannot wrap a step), hence this hook in :meth:`infer`. None: plain float32.
    """

    def __init__(self, *args, autocast_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype

    def infer(self, x, **fit_params):
        if self.autocast_dtype is None:
            return super().infer(x, **fit_params)
        with torch.autocast(torch.device(self.device).type, dtype=getattr(torch, self.autocast_dtype)):
            return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        batch, members, n_classes = y_pred.shape
        y_pred = y_pred.float()  # a no-op in float32; autocast's bfloat16 logits get a float32 loss
        y_true = y_true.to(y_pred.device)
        losses = self.criterion_(y_pred.reshape(-1, n_classes), y_true.reshape(-1)).reshape(batch, members)
        weight = getattr(self.criterion_, "weight", None)
        per_member = losses.mean(0) if weight is None else losses.sum(0) / weight[y_true].sum(0)
        self.member_losses_ = per_member.detach()
        return per_member.sum()


class ShuffleMembers(Callback):
    """Draws every member's new pixel order at the start of each epoch."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        dataset_train.new_epoch()


class ReferenceEarlyStopping(Callback):
    """The reference's stopping rule, applied to every member separately.

    From epoch ``start_epoch`` on (the reference: ``epoch > 3``), a member stops once its batch loss
    has not improved on its best for more than ``patience`` iterations. A stopped member's weights
    are frozen at that moment (restored at the end of training); training ends when all members
    have stopped or at ``max_epochs``.
    """

    def __init__(self, patience=50, start_epoch=4):
        self.patience = patience
        self.start_epoch = start_epoch

    def on_train_begin(self, net, **kwargs):
        members = net.module_.n_members
        self.best_ = [math.inf] * members
        self.count_ = [0] * members
        self.frozen_ = [None] * members
        self.stop_epoch_ = [None] * members
        self.iterations_ = 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        self.iterations_ += 1
        epoch = len(net.history) - 1
        if epoch < self.start_epoch:
            return
        losses = net.member_losses_.tolist()
        for m, loss in enumerate(losses):
            if self.frozen_[m] is not None:
                continue
            if loss < self.best_[m]:
                self.best_[m], self.count_[m] = loss, 0
            else:
                self.count_[m] += 1
            if self.count_[m] > self.patience:
                self.frozen_[m] = net.module_.member_state(m)
                self.stop_epoch_[m] = epoch
        if all(f is not None for f in self.frozen_):
            raise EarlyStop  # skorch's way to end fit early (a KeyboardInterrupt it swallows)

    def on_train_end(self, net, **kwargs):
        for m, state in enumerate(self.frozen_):
            if state is not None:
                net.module_.load_member_state(m, state)
        self.frozen_ = [None] * len(self.frozen_)


class EpochProgress(Callback):
    """A tqdm bar over the epochs, with the early stop's state: members stopped, the current epoch's batches.

    One line, updated in place at most every ``refresh_seconds`` within an epoch: the reference's
    stop rule runs every member at least ``min_epochs`` epochs over all training pixels, so on a
    CPU one epoch can take minutes and a bar per epoch alone would look stuck.
    """

    def __init__(self, refresh_seconds=0.5):
        self.refresh_seconds = refresh_seconds

    def on_train_begin(self, net, X=None, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc="Training pixel MLPs", unit="epoch", leave=True)
        self.batches_ = max(1, math.ceil(len(X) / net.batch_size)) if X is not None else None
        self.batch_, self.last_ = 0, 0.0

    def on_epoch_begin(self, net, **kwargs):
        self.batch_ = 0

    def on_batch_end(self, net, training=None, **kwargs):
        import time

        if not training:
            return
        self.batch_ += 1
        now = time.monotonic()
        if now - self.last_ >= self.refresh_seconds:
            self.last_ = now
            self._show(net)

    def on_epoch_end(self, net, **kwargs):
        self.bar_.update(1)
        self._show(net)

    def on_train_end(self, net, **kwargs):
        self._show(net)
        self.bar_.close()
        del self.bar_  # a terminal handle: the fitted net (and the model file) must not hold it

    def _show(self, net):
        stopper = dict(net.callbacks_).get("reference_early_stopping")
        state = {}
        if stopper is not None and getattr(stopper, "frozen_", None) is not None:
            state["stopped"] = f"{sum(f is not None for f in stopper.stop_epoch_)}/{len(stopper.stop_epoch_)} members"
        if self.batches_:
            state["batch"] = f"{self.batch_}/{self.batches_}"
        losses = getattr(net, "member_losses_", None)
        if losses is not None:
            state["loss"] = f"{float(losses.mean()):.3f}"
        self.bar_.set_postfix(state, refresh=True)
