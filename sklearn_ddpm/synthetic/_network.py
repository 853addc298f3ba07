"""``SegmentationNetworkClassifier``: an ordinary segmentation network, images in, label maps out.

DatasetDDPM trains such a network on the DDPM's pseudo-labelled samples; afterwards it segments an
image with one forward pass of a small network, no diffusion model involved. The reference trains
torchvision's DeepLabV3-ResNet101; torchvision (and segmentation-models-pytorch and timm, which
need it) cannot be installed beside the CPU torch wheel this package pins, so the network is
diffusers' ``UNet2DModel``, a well-kept encoder-decoder already depended on, with one output
channel per class and its timestep held at 0 (the time embedding becomes a learned bias).
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import ProgressBar
from torch.utils.data import Dataset

from ..features._extraction import resize_images, to_model_input
from ..utils import check_images, check_masks, resolve_device
from ..utils._label_maps import LabelMapClassifierMixin
from ..utils._persistence import VersionedPickleMixin
from ..utils._skorch import InterruptibleNet, TrainingInterrupted


class SegmentationUNet(torch.nn.Module):
    """``UNet2DModel`` as a per-pixel classifier: RGB in [-1, 1] → class logits at the same size.

    Plain residual levels (no attention) with ``layers_per_block`` blocks each; the timestep is
    always 0, so the network is an ordinary (time-independent) UNet.
    """

    def __init__(self, n_classes, block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=8):
        super().__init__()
        levels = len(block_out_channels)
        self.unet = UNet2DModel(
            in_channels=3, out_channels=n_classes, block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block, down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels, norm_num_groups=norm_num_groups, add_attention=False,
        )

    def forward(self, x):
        return self.unet(x, torch.zeros(x.shape[0], device=x.device)).sample


class _PairDataset(Dataset):
    """Images ``(N, 3, S, S)`` and label maps ``(N, S, S)``, each pair flipped left-right with p = 0.5."""

    def __init__(self, x, y, hflip, seed):
        self.x, self.y, self.hflip = x, y, hflip
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x, y = self.x[i], self.y[i]
        if self.hflip and torch.rand((), generator=self.generator) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y


class SegmentationNetworkClassifier(VersionedPickleMixin, LabelMapClassifierMixin, BaseEstimator):
    """A UNet segmentation network trained end to end on images and label maps, with skorch.

    Images are resized to ``image_size`` x ``image_size`` for the network; its logits are
    upsampled (bilinear) to each image's own size, so ``predict`` returns label maps at the sizes
    of the input images. It needs no diffusion model at prediction: DatasetDDPM (Baranchuk et
    al., 2022, Table 3) trains it on DDPM samples labelled by the pixel-MLP ensemble
    (:func:`sklearn_ddpm.synthetic.label_samples`).

    Parameters
    ----------
    image_size : int, default=64
        Side of the square network input; a multiple of ``2 ** (len(block_out_channels) - 1)``.
    block_out_channels : tuple of int, default=(32, 64, 128)
        Channels of the UNet's levels (each a multiple of 8, the GroupNorm groups).
    layers_per_block : int, default=1
        Residual blocks per level.
    max_epochs : int, default=20
        Passes over the training pairs (the reference's 20).
    batch_size : int, default=8
        Pairs per step (the reference's 8).
    lr : float, default=1e-3
        Adam learning rate (the reference's).
    hflip : bool, default=True
        Flip each training pair left-right with probability 0.5.
    n_classes : int or None, default=None
        Fix the classes to ``0..n_classes-1``; by default those seen in the training masks.
    ignore_index : int, default=255
        Mask value of unlabelled pixels (not trained on, not scored).
    device : str, default="cpu"
        "cpu" or "cuda" (or "cuda:N"). A model fitted on a GPU predicts on the CPU where CUDA is
        absent (with a warning).
    predict_batch_size : int, default=32
        Images per forward pass at prediction.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the order of the pairs and the flips.
    verbose : int, default=0
        1 prints skorch's epoch log and a progress bar over batches.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.module_`` is the :class:`SegmentationUNet`.
    n_parameters_ : int
        Trainable parameters of the network.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.synthetic import SegmentationNetworkClassifier
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 255, (4, 40, 48, 3), dtype=np.uint8)
    >>> masks = (images[..., 0] > 127).astype(np.uint8)
    >>> net = SegmentationNetworkClassifier(image_size=32, block_out_channels=(8, 16), max_epochs=1,
    ...                                     random_state=0).fit(images, masks)
    >>> net.predict(images).shape
    (4, 40, 48)
    """

    _parameter_constraints = {
        "image_size": [Interval(numbers.Integral, 8, None, closed="left")],
        "block_out_channels": [tuple, list],
        "layers_per_block": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "hflip": ["boolean"],
        "n_classes": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "ignore_index": [numbers.Integral],
        "device": [str, torch.device],
        "predict_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, image_size=64, *, block_out_channels=(32, 64, 128), layers_per_block=1, max_epochs=20,
                 batch_size=8, lr=1e-3, hflip=True, n_classes=None, ignore_index=255, device="cpu",
                 predict_batch_size=32, random_state=None, verbose=0):
        self.image_size = image_size
        self.block_out_channels = block_out_channels
        self.layers_per_block = layers_per_block
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hflip = hflip
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.device = device
        self.predict_batch_size = predict_batch_size
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array of shape (N, H, W, 3) or list of (H, W, 3) arrays
            RGB images (uint8, or floats in [0, 1]); sizes may differ.
        y : array of shape (N, H, W) or list of (H, W) arrays
            Label maps at the images' sizes; ``ignore_index`` marks unlabelled pixels.

        Returns
        -------
        self
        """
        self._validate_params()
        channels = self._check_architecture()
        device = resolve_device(self.device, fitting=True)
        images = check_images(X)
        masks = check_masks(y, [im.shape[:2] for im in images], ignore_index=self.ignore_index)
        labels = np.unique(np.concatenate([np.unique(m[m != self.ignore_index]) for m in masks]))
        if self.n_classes is not None:
            if labels.size and labels.max() >= self.n_classes:
                raise ValueError(f"y has labels {labels[labels >= self.n_classes][:5].tolist()} but "
                                 f"n_classes={self.n_classes} (labels must be 0..{self.n_classes - 1} or "
                                 f"{self.ignore_index}).")
            self.classes_ = np.arange(self.n_classes)
        else:
            if labels.size < 2:
                raise ValueError(f"y holds {labels.size} class(es) among its labelled pixels; a classifier needs "
                                 "at least two (or pass n_classes).")
            self.classes_ = labels
        x = to_model_input(resize_images(images, (self.image_size, self.image_size)))
        targets = torch.from_numpy(np.stack([self._encoded(m) for m in masks]))
        seed = check_random_state(self.random_state).randint(2**31)
        callbacks = [("progress_bar", ProgressBar())] if self.verbose else []
        self.net_ = InterruptibleNet(
            module=SegmentationUNet, module__n_classes=len(self.classes_), module__block_out_channels=channels,
            module__layers_per_block=self.layers_per_block, criterion=torch.nn.CrossEntropyLoss,
            criterion__ignore_index=-100, optimizer=torch.optim.Adam, lr=self.lr, max_epochs=self.max_epochs,
            batch_size=self.batch_size, train_split=None, iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seed), callbacks=callbacks,
            device=str(device), verbose=self.verbose,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net_.initialize()
        try:
            self.net_.partial_fit(_PairDataset(x, targets, self.hflip, seed + 1), None)
        except TrainingInterrupted:
            del self.net_  # a half-trained network must not look fitted
            raise KeyboardInterrupt from None
        self.n_parameters_ = sum(p.numel() for p in self.net_.module_.parameters())
        return self

    def _check_architecture(self):
        channels = tuple(self.block_out_channels)
        if not channels or not all(isinstance(c, numbers.Integral) and c > 0 and c % 8 == 0 for c in channels):
            raise ValueError(f"block_out_channels must be positive multiples of 8 (GroupNorm groups), got "
                             f"{self.block_out_channels!r}.")
        multiple = 2 ** (len(channels) - 1)
        if self.image_size % multiple:
            raise ValueError(f"image_size={self.image_size} must be a multiple of {multiple}: the UNet halves the "
                             f"resolution {len(channels) - 1} times.")
        return channels

    def _encoded(self, mask):
        """Mask → class positions at the network's size (nearest neighbour), ignored pixels -100."""
        resized = _resize_nearest(mask, self.image_size)
        encoded = np.full(resized.shape, -100, dtype=np.int64)
        labelled = resized != self.ignore_index
        encoded[labelled] = np.searchsorted(self.classes_, resized[labelled])
        return encoded

    def _logits(self, images):
        """Yield each image's class logits ``(K, H, W)`` at its own size, on the CPU."""
        check_is_fitted(self, "net_")
        images = check_images(images)
        device = resolve_device(self.device, fitting=False)
        module = self.net_.module_.to(device).eval()
        with torch.inference_mode():
            for start in range(0, len(images), self.predict_batch_size):
                batch = images[start:start + self.predict_batch_size]
                x = to_model_input(resize_images(batch, (self.image_size, self.image_size))).to(device)
                logits = module(x).float()
                for image, row in zip(batch, logits):
                    yield F.interpolate(row[None], size=image.shape[:2], mode="bilinear",
                                        align_corners=False)[0].cpu()

    def predict(self, X):
        """Label maps at the images' sizes: ``(N, H, W)`` (a list when sizes differ)."""
        return _collect([self.classes_[logits.argmax(0).numpy()] for logits in self._logits(X)])

    def predict_proba(self, X):
        """Class probabilities ``(N, H, W, K)`` at the images' sizes (a list when sizes differ)."""
        return _collect([torch.softmax(logits, 0).permute(1, 2, 0).numpy() for logits in self._logits(X)])


def _resize_nearest(mask, size):
    """A label map resized to ``size`` x ``size`` by nearest neighbour (labels are not interpolated)."""
    return np.asarray(Image.fromarray(np.asarray(mask, dtype=np.int32)).resize((size, size), Image.NEAREST))


def _collect(outputs):
    return np.stack(outputs) if len({o.shape for o in outputs}) == 1 else outputs
