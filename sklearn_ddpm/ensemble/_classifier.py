"""``MLPEnsembleClassifier``: the paper's ensemble of pixel MLPs as a scikit-learn classifier."""

import copy
import inspect
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from skorch.callbacks import Callback, ProgressBar

from ..features import PixelFeatures
from ..postprocessing import average_mirrored
from ..utils import check_masks, resolve_device
from ..utils._devices import resolve_autocast_dtype
from ..utils._label_maps import LabelMapClassifierMixin
from ..utils._persistence import VersionedPickleMixin
from ..utils._skorch import TrainingInterrupted
from ._module import BatchedMLPEnsemble, reference_hidden_sizes
from ._net import (
    EnsembleNet,
    MemberPixelDataset,
    ReferenceEarlyStopping,
    ShuffleMembers,
    EpochProgress,
    collate_identity,
)
from ._pixels import DENSE_LABELLED_FRACTION, DENSE_MIN_CLASS_PIXELS, PixelTable, select_training_pixels
from ._bands import prediction_bands
from ._schedule import batch_schedule
from ._voting import class_probabilities, js_uncertainty, majority_vote, uncertainty_score

#: prefixes of extra keyword arguments passed on to the skorch net, as skorch routes them
ROUTED_PREFIXES = ("module__", "optimizer__", "criterion__", "iterator_train__", "callbacks__")

#: routed parameters the estimator sets itself, each with the estimator parameter (quoted) or the
#: fact that decides it; routing one too would reach skorch twice ("got multiple values")
OWNED_ROUTES = {
    "module__n_members": "'n_estimators'",
    "module__in_features": "the features of X",
    "module__n_classes": "'n_classes' (or the labels in y)",
    "module__hidden": "'hidden_layer_sizes'",
    "module__seeds": "'random_state'",
    "optimizer__lr": "'lr'",
    "criterion__weight": "'class_weight'",
    "criterion__reduction": "the per-member losses of the reference early stopping (it must be 'none')",
    "iterator_train__batch_size": "'batch_size'",
    "iterator_train__shuffle": "'random_state' (every member draws its own pixel order)",
    "iterator_train__collate_fn": "the pixel dataset, which serves whole batches",
    "callbacks__reference_early_stopping__patience": "'patience'",
}


class MLPEnsembleClassifier(VersionedPickleMixin, LabelMapClassifierMixin, BaseEstimator):
    """An ensemble of DatasetGAN pixel MLPs, trained with skorch (Baranchuk et al., 2022).

    Each member is Linear(d, 128)-ReLU-BatchNorm-Linear(128, 32)-ReLU-BatchNorm-Linear(32, K)
    (256/128 hidden units from 30 classes on), initialised N(0, 0.02), trained with Adam and
    cross-entropy on labelled pixels, and stopped by the reference rule (after ``min_epochs``
    epochs, when its batch loss has not improved for ``patience`` iterations). Members differ by init seed and data
    order. All members train together in one batched module — the same members the reference
    trains one at a time, computed at once.

    Input is either image-shaped — :class:`~sklearn_ddpm.PixelFeatures`, an ``(N, H, W, D)``
    array or a list of ``(H, W, D)`` arrays, with label maps ``(N, H, W)`` (255 = ignore) — or a
    plain ``(n_samples, n_features)`` matrix with 1-D labels.

    Parameters
    ----------
    n_estimators : int, default=10
        Ensemble members.
    hidden_layer_sizes : "auto" or tuple of int, default="auto"
        "auto": (128, 32) below 30 classes, (256, 128) otherwise (reference). ``()`` gives
        multinomial logistic regression members.
    lr : float or "auto", default="auto"
        Learning rate. "auto": the reference's 1e-3 up to batch 64, ``1e-3 * sqrt(batch_size / 64)``
        above (the large-batch rule of ``sklearn_ddpm.ensemble._schedule``).
    batch_size : int, default=64
        Training pixels per step. With the "auto" ``lr`` and ``patience`` batch 2048 scored 1.3
        mIoU points below batch 64 on Weizmann (README, Benchmarks); batch 256 fitted 20 Weizmann
        horses 1.6x faster in CPU seconds on the project's 2-core CPU at the same GroupKFold CV
        mIoU (86.0 vs 85.8, 2 seeds; ``benchmarks/results/ensemble_speed.json``).
    max_epochs : int, default=100
    patience : int, "auto" or None, default="auto"
        Iterations without improvement before a member stops; None trains ``max_epochs``. "auto":
        the reference's 50 at batch 64, kept in pixels for larger batches (``50 * 64 /
        batch_size`` iterations, at least 1).
    min_epochs : int or "auto", default="auto"
        Epochs every member trains before the stop rule applies. "auto": the reference's 4 (more
        epochs at large batches overfit on Weizmann, see ``sklearn_ddpm/ensemble/_schedule.py``).
    optimizer : torch optimizer class, default=torch.optim.Adam
    callbacks : None or list, default=None
        Extra skorch callbacks for the training, as skorch's ``callbacks``: instances (or classes)
        of :class:`skorch.callbacks.Callback`, or ``(name, callback)`` tuples, run after the
        estimator's own (the members' shuffling and the reference early stop). E.g. a learning-
        rate warm-up, ``[("warmup", LRScheduler(LinearLR, step_every="batch", ...))]``; its
        parameters are then settable as ``callbacks__warmup__<param>`` (skorch's routing), also
        in a search. Each fit trains copies, so the callbacks given stay unfitted. The safe model
        format (:mod:`sklearn_ddpm.io`) refuses callbacks of classes it does not trust; prediction
        does not use them, so ``set_params(callbacks=None)`` before saving.
    voting : {"hard", "soft"}, default="hard"
        "hard": majority vote of the members (paper), ties broken by the mean probability;
        "soft": argmax of the mean probability.
    refine : None or GuidedFilter, default=None
        Edge-aware refinement of each image's mean probabilities, guided by the image
        (:class:`sklearn_ddpm.postprocessing.GuidedFilter`): ``predict_proba`` returns the
        refined probabilities and ``predict`` their argmax (the members' vote is then not used);
        uncertainty maps stay those of the members. Needs the :class:`PixelFeatures` of
        :class:`DDPMFeatureTransformer`, which carry the images. Tune it in a grid search as
        ``clf__refine__radius`` and ``clf__refine__eps``.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the loss, for imbalanced classes.
    ignore_index : int, default=255
        Mask value that marks unlabelled pixels.
    standardize : bool, default=False
        Train the members on features shifted and scaled to zero mean and unit variance per
        channel (statistics of up to 100,000 training pixels). Decoder blocks differ in scale by
        orders of magnitude, so without it the largest block dominates the first layer's
        gradients. The shift and scale are folded into the first layer after training, so
        prediction costs the same and ``net_.module_`` takes raw features. The paper does not
        standardize (False).
    min_class_pixels : int or "auto", default="auto"
        A class covering fewer pixels of an image is ignored in that image (reference: tiny specks
        in dense masks are mostly labelling noise); a UserWarning names the classes and pixel
        counts dropped. 0 keeps all labelled pixels. "auto" decides per image: the reference's 20
        where at least half of the image's pixels are labelled (a dense mask), 0 where fewer are
        (sparse labels: scribbles, strokes, clicks), so both train without a flag.
    max_pixels_per_image : int or None, default=None
        At most this many labelled pixels per image (sampled); None: no per-image cap.
    max_pixels_per_class : int or None, default=500
        At most this many labelled pixels of each class per image (class-balanced sampling);
        None with ``max_pixels_per_image=None`` trains on every labelled pixel, as the paper does.
        The reference's stop rule trains every member at least ``min_epochs`` epochs over the
        training pixels, so all the pixels of 20 horses made a default fit run for over half an hour
        on a 2-core CPU. The default was chosen among per-image caps of 1,000-5,000 and 500 per
        class by GroupKFold(4) cross-validation on 20 Weizmann ``labeled_pool`` images
        (``benchmarks/pixel_caps.py``, record ``benchmarks/results/pixel_caps_weizmann.json``):
        the fastest fit within one standard error of the best CV mIoU (2,000 per image: 86.2;
        500 per class: 85.3).
    n_classes : int or None, default=None
        Fix the classes to ``0..n_classes-1`` (labels beyond are an error); by default the classes
        are the labels seen in training. It also decides the "auto" hidden sizes (the reference
        counts all classes of the task, so pass it when some classes are missing from the few
        labelled images). Classes without training pixels are never predicted.
    batched : bool, default=True
        Train all members at once in one batched module. False trains them one after another
        (the reference's way, kept as a baseline); both give the same members.
    device : str, default="cpu"
    autocast_dtype : {None, "auto", "bfloat16", "float16"}, default=None
        Train the members' forward and backward under ``torch.autocast`` in this type (the loss,
        the weights and Adam's update stay float32), and store the gathered training features in
        it; prediction stays float32. "auto": bfloat16 where the hardware computes it natively
        (CUDA GPUs that support it, CPUs with AVX512-BF16 or AMX), else None. None: float32, the
        paper's. Opt-in: on the project's 2-core CPU (AVX512-BF16, one thread) bfloat16 fitted 20
        Weizmann horses 1.16x faster in CPU seconds than float32 at batch 64, short of the 1.3x
        a default needs, at the same GroupKFold CV mIoU (85.9 vs 85.8, 2 seeds;
        ``benchmarks/results/ensemble_speed.json``).
    predict_batch_size : int, default=4096
        Pixels per forward pass at prediction time. Passes whose activations stay in the CPU's
        cache are faster: on the project's CPU 16384 took about twice as long as 2048-4096.
    random_state : int, RandomState instance or None, default=None
        Seeds members' inits, data orders and pixel subsampling. None draws from numpy's global
        RandomState (``np.random.seed`` makes it reproducible), as in scikit-learn.
    progress : bool, default=False
        Show a bar over the training epochs with the early stop's state (members stopped, the
        current epoch's batches, the loss): one line, unlike ``verbose``'s per-batch bar and epoch
        table.
    verbose : int, default=0
        1 prints skorch's epoch log and a progress bar.
    **kwargs
        ``module__*``, ``optimizer__*``, ``criterion__*``, ``iterator_train__*`` and ``callbacks__*``
        are routed to the skorch net, as in skorch (e.g. ``optimizer__weight_decay=1e-4``,
        ``criterion__label_smoothing=0.1``). The criterion is ``torch.nn.CrossEntropyLoss``. Routed
        parameters that the estimator decides itself (``module__hidden``: ``hidden_layer_sizes``,
        ``optimizer__lr``: ``lr``, ``criterion__weight``: ``class_weight``, ...) are refused in
        ``fit``; set the estimator's own parameter instead.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    net_ : EnsembleNet
        The fitted skorch net; ``net_.module_`` is the :class:`BatchedMLPEnsemble`.
    n_features_in_ : int
    hidden_layer_sizes_ : tuple of int
        The hidden sizes used.
    lr_, patience_, min_epochs_ : float, int or None, int
        The learning rate, patience and minimum epochs used ("auto" resolved).
    autocast_dtype_ : str or None
        The autocast type the members trained in ("auto" resolved; None: float32).
    feature_mean_, feature_scale_ : ndarray of shape (n_features_in_,) or None
        The standardization statistics (``standardize=True``), already folded into the first layer.
    trained_classes_ : ndarray of bool
        Which of ``classes_`` had training pixels.
    stop_epochs_ : list
        Epoch at which each member stopped (None: ran ``max_epochs``).
    n_iter_ : int
        Optimizer steps of the longest-training member.
    n_training_pixels_ : int
        Labelled pixels (samples) trained on, after ``min_class_pixels`` and the subsampling caps.

    Notes
    -----
    Sparse (scribble) labels are a supported use: masks that are mostly ``ignore_index`` with a
    few strokes per class, as drawn for scikit-image's ``TrainableSegmenter`` or napari-convpaint
    (:class:`sklearn_ddpm.interactive.InteractiveSegmenter` holds such a labelling session). The
    default ``min_class_pixels="auto"`` keeps all their labelled pixels (an image less than half
    labelled) and applies the reference's 20-pixel rule to dense masks, where a class covering so
    few pixels of an image is mostly labelling noise; ``fit`` warns with the classes and pixel
    counts it drops, and fails with that list when nothing is left.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_ddpm import MLPEnsembleClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = MLPEnsembleClassifier(n_estimators=3, max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    #: Parameters read only at prediction (``fit`` does not use them): a search that varies only
    #: these shares one fit per fold (``sklearn_ddpm.model_selection._shared_fits``).
    _prediction_params = ("voting", "refine", "predict_batch_size")

    _parameter_constraints = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [StrOptions({"auto"}), tuple, list],  # elements: _hidden_sizes
        "lr": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [None, StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "min_epochs": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "optimizer": [type],
        "callbacks": [None, list],
        "voting": [StrOptions({"hard", "soft"})],
        "refine": [None, HasMethods(["refine"])],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "ignore_index": [numbers.Integral],
        "standardize": ["boolean"],
        "min_class_pixels": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "max_pixels_per_image": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "max_pixels_per_class": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "n_classes": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "batched": ["boolean"],
        "device": [str, torch.device],
        "autocast_dtype": [None, StrOptions({"auto", "bfloat16", "float16"})],
        "predict_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_estimators=10,
        *,
        hidden_layer_sizes="auto",
        lr="auto",
        batch_size=64,
        max_epochs=100,
        patience="auto",
        min_epochs="auto",
        optimizer=torch.optim.Adam,
        callbacks=None,
        voting="hard",
        refine=None,
        class_weight=None,
        ignore_index=255,
        standardize=False,
        min_class_pixels="auto",
        max_pixels_per_image=None,
        max_pixels_per_class=500,
        n_classes=None,
        batched=True,
        device="cpu",
        autocast_dtype=None,
        predict_batch_size=4096,
        random_state=None,
        progress=False,
        verbose=0,
        **kwargs,
    ):
        self.n_estimators = n_estimators
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_epochs = min_epochs
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.voting = voting
        self.refine = refine
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.standardize = standardize
        self.min_class_pixels = min_class_pixels
        self.max_pixels_per_image = max_pixels_per_image
        self.max_pixels_per_class = max_pixels_per_class
        self.n_classes = n_classes
        self.batched = batched
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.predict_batch_size = predict_batch_size
        self.random_state = random_state
        self.progress = progress
        self.verbose = verbose
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- skorch-style routed parameters ------------------------------------------------------
    def _routed_params_all(self):
        names = set(self._get_param_names())
        return {k: v for k, v in vars(self).items() if k not in names and not k.endswith("_") and not k.startswith("_")}

    def _routed_params(self):
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTED_PREFIXES)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        routed = {k: v for k, v in params.items() if k.startswith(ROUTED_PREFIXES)}
        for key, value in routed.items():
            setattr(self, key, value)
        return super().set_params(**{k: v for k, v in params.items() if k not in routed})

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y):
        """Train the ensemble.

        Parameters
        ----------
        X : PixelFeatures, array of shape (N, H, W, D), list of (H, W, D) arrays, or (n_samples, n_features)
            Pixel features.
        y : array of shape (N, H, W), list of (H, W) arrays, or (n_samples,)
            Label maps (``ignore_index`` = unlabelled) or labels.

        Returns
        -------
        self
        """
        self._validate_params()
        _check_routed(self._routed_params_all())
        _check_callbacks(self.callbacks)
        device = resolve_device(self.device, fitting=True)
        rng = _generator(self.random_state)
        table, image_index, ys, xs, labels = self._training_pixels(X, y, rng)
        check_classification_targets(labels)
        if self.n_classes is not None:
            self.classes_ = np.arange(self.n_classes)
            if labels.max() >= self.n_classes:
                bad = np.unique(labels[labels >= self.n_classes])[:5].tolist()
                raise ValueError(
                    f"y has labels {bad} but n_classes={self.n_classes} "
                    f"(labels must be 0..{self.n_classes - 1} or {self.ignore_index})."
                )
        else:
            self.classes_ = np.unique(labels)
        if len(np.unique(labels)) < 2:
            raise ValueError(
                f"y holds only one class ({self.classes_[0]!r}) among the training pixels; a classifier "
                "needs at least two classes."
            )
        encoded = np.searchsorted(self.classes_, labels)
        n_classes = len(self.classes_)
        hidden = _hidden_sizes(self.hidden_layer_sizes, n_classes)
        self.lr_, self.patience_, self.min_epochs_ = self._schedule()
        autocast = resolve_autocast_dtype(self.autocast_dtype, device)
        self.autocast_dtype_ = None if autocast is None else str(autocast).removeprefix("torch.")
        weights = None
        if self.class_weight is not None:
            present = np.unique(encoded)
            weights = np.ones(n_classes)
            weights[present] = compute_class_weight(
                self.class_weight
                if self.class_weight == "balanced"
                else {np.searchsorted(self.classes_, k): v for k, v in self.class_weight.items()},
                classes=present,
                y=encoded,
            )
        seeds = rng.integers(0, 2**31, size=(2, self.n_estimators))
        self.n_features_in_ = table.n_features
        self.hidden_layer_sizes_ = hidden
        # Classes fixed by n_classes but absent from the training pixels are never predicted.
        self.trained_classes_ = np.isin(np.arange(n_classes), np.unique(encoded))
        self.net_ = self._make_net(table.n_features, n_classes, hidden, seeds[0], weights, device)
        self.net_.initialize()
        standardization = _standardization(table, image_index, ys, xs, rng) if self.standardize else None
        self.feature_mean_, self.feature_scale_ = standardization or (None, None)
        groups = [range(self.n_estimators)] if self.batched else [[m] for m in range(self.n_estimators)]
        self.stop_epochs_, self.n_iter_ = [], 0
        for members in groups:
            net = (
                self.net_
                if self.batched
                else self._make_net(
                    table.n_features, n_classes, hidden, seeds[0][members], weights, device
                ).initialize()
            )
            dataset = MemberPixelDataset(table, image_index, ys, xs, encoded, seeds[1][members], standardization,
                                         dtype=torch.float32 if autocast is None else autocast)
            try:
                net.partial_fit(dataset, None)
            except TrainingInterrupted:
                # Ctrl-C: a half-trained ensemble must not look fitted (nor be saved as such).
                del self.net_
                raise KeyboardInterrupt from None
            stopper = dict(net.callbacks_)["reference_early_stopping"]
            self.stop_epochs_ += list(stopper.stop_epoch_)
            self.n_iter_ = max(self.n_iter_, stopper.iterations_)
            if not self.batched:
                self.net_.module_.load_member_state(members[0], net.module_.member_state(0))
        if standardization is not None:
            self.net_.module_.fold_input_standardization(*standardization)
        self.n_training_pixels_ = len(labels)
        return self

    def _schedule(self):
        """``lr``, ``patience`` and ``min_epochs`` with "auto" resolved by the large-batch rule."""
        auto = batch_schedule(self.batch_size)
        return tuple(auto[k] if value == "auto" else value
                     for k, value in enumerate((self.lr, self.patience, self.min_epochs)))

    def _make_net(self, n_features, n_classes, hidden, init_seeds, class_weight, device):
        routed = self._routed_params()
        callbacks = [
            ("shuffle_members", ShuffleMembers()),
            (
                "reference_early_stopping",
                ReferenceEarlyStopping(
                    patience=self.patience_ if self.patience_ is not None else float("inf"),
                    start_epoch=self.min_epochs_,
                ),
            ),
        ]
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        elif self.progress:
            callbacks.append(("epoch_progress", EpochProgress()))
        # copies: skorch keeps its fitted state on the callbacks, and a parameter must stay as given
        callbacks += copy.deepcopy(list(self.callbacks or ()))
        return EnsembleNet(
            module=BatchedMLPEnsemble,
            module__n_members=len(init_seeds),
            module__in_features=n_features,
            module__n_classes=n_classes,
            module__hidden=hidden,
            module__seeds=[int(s) for s in init_seeds],
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=self.optimizer,
            lr=self.lr_,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            iterator_train__shuffle=False,
            iterator_train__collate_fn=collate_identity,
            callbacks=callbacks,
            device=str(device),
            autocast_dtype=self.autocast_dtype_,
            verbose=self.verbose,
            # per-member losses are reduced in EnsembleNet.get_loss, weighted by class_weight
            criterion__reduction="none",
            criterion__weight=None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32),
            **_fused_update(self.optimizer, routed),
            **routed,
        )

    def _training_pixels(self, X, y, rng):
        table = PixelTable.from_input(X)
        if table is None:
            X, y = validate_data(self, X, y, dtype=np.float32, ensure_min_samples=1)
            y = column_or_1d(y, warn=True)
            table = PixelTable.from_matrix(X)
            n = len(y)
            return table, np.zeros(n, np.int64), np.arange(n), np.zeros(n, np.int64), y
        masks = check_masks(y, [tuple(s) for s in table.sizes], ignore_index=self.ignore_index)
        if self.n_classes is not None:
            for i, mask in enumerate(masks):
                bad = (mask >= self.n_classes) & (mask != self.ignore_index)
                if bad.any():
                    raise ValueError(
                        f"y[{i}] has labels {np.unique(mask[bad])[:5].tolist()} outside 0..{self.n_classes - 1} "
                        f"(n_classes={self.n_classes}); unlabelled pixels must be {self.ignore_index}."
                    )
        image_index, ys, xs, labels, dropped = select_training_pixels(
            masks, self.ignore_index, self.min_class_pixels, self.max_pixels_per_image, self.max_pixels_per_class, rng
        )
        if len(labels) == 0 and not dropped:
            raise ValueError(f"y has no labelled pixels to train on (all are ignore_index={self.ignore_index}).")
        if dropped:
            # Dropping small classes suits dense masks (specks are noise) but silently discards
            # sparse (scribble) labels, where every class covers only a few pixels.
            left = set(np.unique(labels).tolist())
            summary = ", ".join(
                f"class {label} ({pixels} pixels in {images} image{'s' * (images != 1)}"
                + (", none left)" if left and label not in left else ")")
                for label, (pixels, images) in dropped.items()
            )
            rule = (f"min_class_pixels='auto' ({DENSE_MIN_CLASS_PIXELS} in images at least "
                    f"{DENSE_LABELLED_FRACTION:.0%} labelled)" if self.min_class_pixels == "auto"
                    else f"min_class_pixels={self.min_class_pixels}")
            what = f"{rule} dropped the classes covering fewer pixels of an image: " + summary
            if len(labels) == 0:
                raise ValueError(
                    f"y has no labelled pixels left to train on: {what}. For sparse (scribble) labels, a few "
                    "strokes per class, pass min_class_pixels=0."
                )
            warnings.warn(f"{what}; min_class_pixels=0 keeps all labelled pixels.", UserWarning, stacklevel=3)
        return table, image_index, ys, xs, labels

    # -- prediction --------------------------------------------------------------------------
    def _prediction_table(self, X):
        check_is_fitted(self, "net_")
        table = PixelTable.from_input(X)
        if table is None:
            X = validate_data(self, X, dtype=np.float32, reset=False)
            table = PixelTable.from_matrix(X)
        elif table.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {table.n_features} features per pixel, but {type(self).__name__} "
                f"was fitted with {self.n_features_in_}."
            )
        return table

    def _member_probabilities(self, table, i):
        """Members' class probabilities ``(n_pixels, M, K)`` for all pixels of image ``i``, raster order."""
        return torch.cat([p for _, _, p in self._member_probability_bands(table, i)])

    def _member_probability_bands(self, table, i):
        """``(top, bottom, probabilities (n_pixels, M, K))`` for bands of rows of image ``i``, top to bottom.

        Compact features give bands of ``predict_batch_size // width`` rows (each computed as it is
        reached: a large image's probabilities are never held whole); other inputs one band.
        """
        module = self.net_.module_
        module.eval()
        device = next(module.parameters()).device
        untrained = ~torch.as_tensor(getattr(self, "trained_classes_", np.ones(len(self.classes_), bool)))

        def probabilities_of(logits):
            # Classes without training pixels are removed in logit space: zeroing their probabilities
            # afterwards and renormalising gave 0 / 0 = NaN wherever an untrained class had taken all
            # the mass (the trained classes' probabilities underflow to 0 at extreme logits).
            logits = logits.float()
            if untrained.any():
                logits[..., untrained.to(logits.device)] = -torch.inf
            return class_probabilities(logits).cpu()

        def bands_of(table):
            # inference mode is entered around each step, never held across a yield: two of these
            # generators interleave (flip_tta), and a caller's code runs between the bands
            if isinstance(table.source, PixelFeatures):
                # The first layer is linear, so the features project it at native resolution and
                # upsample the narrower result (module.forward_hidden takes it from there).
                band = max(1, self.predict_batch_size // int(table.sizes[i][1]))
                with torch.inference_mode():
                    bands = table.source.projected_bands(i, module.weights[0], module.biases[0], band, device)
                while True:
                    with torch.inference_mode():
                        item = next(bands, None)
                        if item is None:
                            return
                        top, bottom, hidden = item
                        probabilities = probabilities_of(module.forward_hidden(hidden))
                    yield top, bottom, probabilities
            else:
                ys, xs = table.image_pixels(i)
                chunks = []
                with torch.inference_mode():
                    for start in range(0, len(ys), self.predict_batch_size):
                        sl = slice(start, start + self.predict_batch_size)
                        logits = module(table.gather(np.full(len(ys[sl]), i), ys[sl], xs[sl]).to(device))
                        chunks.append(probabilities_of(logits))
                yield 0, int(table.sizes[i][0]), torch.cat(chunks)

        mirrored = None
        if isinstance(table.source, PixelFeatures) and table.source.mirrored is not None:
            mirrored = bands_of(PixelTable.from_input(table.source.mirrored))
        for top, bottom, probabilities in bands_of(table):
            if mirrored is not None:
                # flip_tta: the same pixels seen in the mirror image, averaged member by member
                probabilities = average_mirrored(probabilities, next(mirrored)[2], int(table.sizes[i][1]))
            if not torch.isfinite(probabilities).all():
                # Never vote or filter over a NaN: it spreads, and the argmax of NaN is class 0.
                bad = ~torch.isfinite(probabilities).all(-1)
                raise FloatingPointError(
                    f"image {i}: the ensemble gave non-finite class probabilities for {int(bad.any(-1).sum())} of its "
                    f"{len(probabilities)} pixels (members {torch.nonzero(bad.any(0)).flatten().tolist()}) in rows "
                    f"{top}:{bottom}; its features or the fitted weights hold NaN or infinity."
                )
            yield top, bottom, probabilities

    def predict_bands(self, X):
        """Labels, probabilities and uncertainty of each image, a band of rows at a time.

        For images too large to hold their per-pixel outputs (or features) whole: with the
        compact features of ``DDPMFeatureTransformer(tile=...)``, memory is bounded by a band, and
        the bands can be written to disk as they come. The values are those of :meth:`predict`,
        :meth:`predict_proba` and :meth:`predict_uncertainty` (``refine`` runs on overlapping
        blocks of rows with enough context to give the same numbers, to float rounding).

        Parameters
        ----------
        X : PixelFeatures, array of shape (N, H, W, D) or list of (H, W, D) arrays

        Yields
        ------
        i : int
            The image.
        top, bottom : int
            Its rows in this band.
        outputs : dict
            ``"labels"`` ``(rows, W)`` of ``classes_``; ``"probabilities"`` ``(rows, W, K)`` float32,
            the mean member probabilities (refined by ``refine``); ``"uncertainty"`` ``(rows, W)``
            float32, the members' Jensen-Shannon divergence.
        """
        return prediction_bands(self, X)

    def _per_image(self, X, reduce, guided=True):
        """Apply ``reduce(member_probabilities, image)`` to every image and shape the results.

        ``image`` is the guide of ``refine`` (None without it, or when not ``guided``); ``reduce``
        returns one array per pixel set, or a tuple of them (then a tuple comes back).
        """
        table = self._prediction_table(X)
        outputs = []
        for i in range(len(table)):
            result = reduce(self._member_probabilities(table, i), self._guide(table, i) if guided else None)
            parts = result if isinstance(result, tuple) else (result,)
            if table.kind == "images":
                parts = tuple(o.reshape(*table.sizes[i], *o.shape[1:]) for o in parts)
            outputs.append(parts)
        shaped = tuple(_collect([parts[k] for parts in outputs], table.kind) for k in range(len(outputs[0])))
        return shaped if isinstance(result, tuple) else shaped[0]

    def predict(self, X):
        """Predicted labels: ``(N, H, W)`` label maps (a list when sizes differ) or ``(n_samples,)``."""
        check_is_fitted(self, "net_")
        n_classes = len(self.classes_)

        return self._per_image(X, lambda p, guide: self.classes_[self._decide(p, guide, n_classes)])

    def predict_with_uncertainty(self, X):
        """Labels and Jensen-Shannon uncertainty maps in one pass over the members."""
        check_is_fitted(self, "net_")
        n_classes = len(self.classes_)
        return self._per_image(
            X, lambda p, guide: (self.classes_[self._decide(p, guide, n_classes)], js_uncertainty(p).numpy())
        )

    def _guide(self, table, i):
        """Image ``i`` itself when ``refine`` needs it (else None)."""
        if self.refine is None:
            return None
        images = getattr(table.source, "images", None)
        if images is None:
            raise ValueError(
                "refine needs the images: pass the PixelFeatures of DDPMFeatureTransformer (output='compact'), "
                "which carry them, not dense or tabular features."
            )
        return images[i]

    def _mean_probabilities(self, p, guide):
        """Mean member probabilities ``(n_pixels, K)``, refined by ``refine`` guided by the image."""
        mean = p.mean(1).numpy()
        if self.refine is None:
            return mean
        height, width = guide.shape[:2]
        return self.refine.refine(mean.reshape(height, width, -1), guide).reshape(height * width, -1)

    def _decide(self, p, guide, n_classes):
        """Class indices of one image's pixels: the members' vote, or the refined probabilities' argmax."""
        if self.refine is not None:
            return self._mean_probabilities(p, guide).argmax(-1)
        return self._vote(p, n_classes).numpy()

    def _vote(self, p, n_classes):
        if self.voting == "hard":
            return majority_vote(p.argmax(-1), n_classes, tie_break=p.mean(1))
        return p.mean(1).argmax(-1)

    def predict_proba(self, X):
        """Mean member probabilities (refined by ``refine``): ``(N, H, W, K)`` (a list when sizes differ)
        or ``(n_samples, K)``."""
        return self._per_image(X, self._mean_probabilities)

    def predict_uncertainty(self, X):
        """Per-pixel Jensen-Shannon divergence of the members (0 = full agreement), image-shaped."""
        return self._per_image(X, lambda p, guide: js_uncertainty(p).numpy(), guided=False)

    def uncertainty_scores(self, X):
        """One uncertainty per image: the mean of its 10% most uncertain pixels (reference)."""
        maps = self.predict_uncertainty(X)
        maps = [maps] if isinstance(maps, np.ndarray) and maps.ndim == 1 else maps
        return np.array([float(uncertainty_score(torch.as_tensor(np.asarray(m)))) for m in maps])


def _hidden_sizes(hidden_layer_sizes, n_classes):
    """The hidden sizes to build; checks the elements, which ``_parameter_constraints`` cannot express."""
    if hidden_layer_sizes == "auto":
        return reference_hidden_sizes(n_classes)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in hidden_layer_sizes):
        raise ValueError(
            "The 'hidden_layer_sizes' parameter of MLPEnsembleClassifier must be 'auto' or a tuple or list of "
            f"positive ints. Got {hidden_layer_sizes!r} instead."
        )
    return tuple(int(v) for v in hidden_layer_sizes)


def _standardization(table, image_index, ys, xs, rng, max_pixels=100_000):
    """Per-channel mean and scale (std; 1 where a channel is constant) of the training pixels."""
    pick = np.arange(len(ys)) if len(ys) <= max_pixels else np.sort(rng.choice(len(ys), max_pixels, replace=False))
    sample = table.gather(image_index[pick], ys[pick], xs[pick]).double()
    mean, std = sample.mean(0), sample.std(0)
    std[std < 1e-6 * max(float(std.max()), 1e-12)] = 1.0
    return mean.float().numpy(), std.float().numpy()


def _collect(outputs, kind):
    if kind == "tabular":
        return outputs[0]
    if len({o.shape for o in outputs}) == 1:
        return np.stack(outputs)
    return outputs


def _generator(random_state):
    """A numpy ``Generator`` for a scikit-learn ``random_state`` (None, int or RandomState).

    An int seeds ``default_rng`` directly, so seeded fits reproduce those of earlier versions;
    None and RandomState instances go through ``check_random_state`` (None: numpy's global
    RandomState, as in scikit-learn), which draws the Generator's seed.
    """
    if isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_random_state(random_state).randint(2**31))


def _fused_update(optimizer, routed):
    """``optimizer__fused=True`` where the optimizer has a fused kernel and the caller did not choose.

    The same update in one pass over the parameters: the default (one tensor operation at a time)
    took several times longer per step than the members' forward and backward on a CPU.
    """
    try:
        fusable = "fused" in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        fusable = False
    return {"optimizer__fused": True} if fusable and "optimizer__fused" not in routed else {}


#: names of the callbacks the estimator adds itself (``callbacks`` cannot replace them)
OWN_CALLBACKS = ("shuffle_members", "reference_early_stopping", "progress_bar", "epoch_progress")


def _check_callbacks(callbacks):
    """Every element a skorch ``Callback`` (instance or class) or a ``(name, callback)`` tuple."""
    for item in callbacks or ():
        name, callback = item if isinstance(item, tuple) and len(item) == 2 else (None, item)
        if not (isinstance(callback, Callback) or isinstance(callback, type) and issubclass(callback, Callback)):
            raise TypeError(
                "The 'callbacks' parameter of MLPEnsembleClassifier must hold skorch callbacks (instances or "
                f"classes of skorch.callbacks.Callback) or (name, callback) tuples. Got {item!r} instead."
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"A callback's name must be a str, got {name!r} for {callback!r}.")
        if name in OWN_CALLBACKS:
            raise ValueError(
                f"The callback name {name!r} is the estimator's own ({', '.join(OWN_CALLBACKS)}): set its "
                f"parameters as callbacks__{name}__<param>, or give the added callback another name."
            )


def _check_routed(kwargs):
    bad = [k for k in kwargs if not k.startswith(ROUTED_PREFIXES)]
    if bad:
        raise TypeError(
            f"MLPEnsembleClassifier got unexpected keyword arguments {bad}; extra arguments must "
            f"start with one of {ROUTED_PREFIXES}."
        )
    owned = [k for k in kwargs if k in OWNED_ROUTES]
    if owned:
        raise TypeError(
            "MLPEnsembleClassifier sets these skorch parameters itself: "
            + "; ".join(f"{k} is decided by {OWNED_ROUTES[k]}" for k in owned)
            + ". Set the estimator's own parameter instead of routing them."
        )
