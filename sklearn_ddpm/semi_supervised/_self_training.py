"""``SelfTrainingSegmenter``: refit a segmenter on its own most certain labels of the unlabelled images."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..synthetic import DEFAULT_DROP_FRACTION, uncertainty_filter
from ..utils._label_maps import LabelMapClassifierMixin

#: unlabelled images whose features are computed at once while pseudo-labelling: the features of a
#: whole unlabelled pool would be held in memory together otherwise
PSEUDO_LABEL_BATCH = 8


def _last_step(segmenter):
    return segmenter.steps[-1][1] if hasattr(segmenter, "steps") else segmenter


def _ignore_index(segmenter):
    """The mask value of unlabelled pixels: the classifier's ``ignore_index`` (255 by default)."""
    return _last_step(segmenter).get_params(deep=False).get("ignore_index", 255)


def _segmenter_has(name):
    return lambda self: hasattr(getattr(self, "segmenter_", self.segmenter), name)


class SelfTrainingSegmenter(LabelMapClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Self-training of a segmenter on the unlabelled images: fit, pseudo-label, keep the certain pixels, refit.

    As :class:`sklearn.semi_supervised.SelfTrainingClassifier`, but for label maps: an image whose
    mask is entirely ``ignore_index`` (255) is unlabelled. ``fit`` fits a clone of ``segmenter`` on
    the labelled images, labels the unlabelled ones with it, keeps the pixels its ensemble is most
    certain of (lowest Jensen-Shannon divergence between the members), and fits a fresh clone on the
    labelled images plus those pseudo-labels; ``n_rounds`` times. The pixels are kept with the
    uncertainty filter of the DatasetDDPM pseudo-labels (:func:`sklearn_ddpm.synthetic.uncertainty_filter`:
    the ``1 - keep_fraction`` most uncertain are dropped, ties by position).

    Unlabelled images never score (their masks are all ``ignore_index``), so the estimator can be
    cross-validated as it is: with folds over the labelled images and the unlabelled ones in every
    training set, ``GridSearchCV`` chooses ``n_rounds`` and ``keep_fraction``.

    Parameters
    ----------
    segmenter : estimator
        The segmenter to self-train, e.g. :func:`~sklearn_ddpm.make_segmenter`'s pipeline. Its last
        step (or itself) must have ``predict_with_uncertainty`` (an
        :class:`~sklearn_ddpm.MLPEnsembleClassifier`: the members' disagreement is the
        uncertainty); the steps before it compute the features. Cloned for every round.
    n_rounds : int, default=1
        Rounds of pseudo-labelling and refitting. 0 fits the segmenter on the labelled images only.
    keep_fraction : float in (0, 1], default=0.9
        Share of the unlabelled pixels kept as pseudo-labels, the most certain first (0.9: the
        synthetic pseudo-labels' default, which drops the 10 % most uncertain).
    keep_scope : {"image", "pool"}, default="image"
        "image": every unlabelled image keeps ``keep_fraction`` of its own pixels (each image
        contributes); "pool": the pixels of all unlabelled images are ranked together (the
        uncertain images contribute fewer pixels).

    Attributes
    ----------
    segmenter_ : estimator
        The segmenter of the last round, fitted on the labelled images and the last pseudo-labels.
    transduction_ : list of ndarray
        The masks ``segmenter_`` was fitted on, one per image of ``fit``: the given ones for the
        labelled images, the pseudo-labels (``ignore_index`` where not kept) for the unlabelled.
    n_iter_ : int
        Rounds run (0 when there was no unlabelled image).
    n_pseudo_pixels_ : list of int
        Pseudo-labelled pixels kept in each round.
    n_unlabelled_pixels_ : int
        Pixels of the unlabelled images.
    uncertainty_thresholds_ : list of float
        The largest Jensen-Shannon divergence kept in each round.
    classes_ : ndarray
        The classes of ``segmenter_``.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : the same idea for one label per sample.
    sklearn_ddpm.synthetic.label_samples : pseudo-labels for the DDPM's own samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm import make_segmenter
    >>> from sklearn_ddpm.semi_supervised import SelfTrainingSegmenter
    >>> self_training = SelfTrainingSegmenter(make_segmenter(), n_rounds=1, keep_fraction=0.5)
    >>> self_training.get_params()["segmenter__clf__n_estimators"]
    10
    >>> unlabelled_masks = [np.full(image.shape[:2], 255) for image in unlabelled_images]  # doctest: +SKIP
    >>> self_training.fit(images + unlabelled_images, masks + unlabelled_masks)  # doctest: +SKIP
    >>> self_training.n_pseudo_pixels_  # doctest: +SKIP
    """

    _required_parameters = ["segmenter"]  # MetaEstimatorMixin's is "estimator"

    _parameter_constraints = {
        "segmenter": [HasMethods(["fit", "predict"])],
        "n_rounds": [Interval(numbers.Integral, 0, None, closed="left")],
        "keep_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "keep_scope": [StrOptions({"image", "pool"})],
    }

    def __init__(self, segmenter, *, n_rounds=1, keep_fraction=1 - DEFAULT_DROP_FRACTION, keep_scope="image"):
        self.segmenter = segmenter
        self.n_rounds = n_rounds
        self.keep_fraction = keep_fraction
        self.keep_scope = keep_scope

    def fit(self, X, y):
        """Fit on the labelled images, then ``n_rounds`` rounds of pseudo-labelling and refitting.

        Parameters
        ----------
        X : list of (H, W, 3) arrays or array of shape (N, H, W, 3)
            Labelled and unlabelled images.
        y : list of (H, W) arrays or array of shape (N, H, W)
            Their masks; an unlabelled image's mask is entirely ``ignore_index`` (255).

        Returns
        -------
        self
        """
        self._validate_params()
        images, masks = list(X), [np.asarray(m) for m in y]
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} images and {len(masks)} masks; give one mask per image.")
        ignore = _ignore_index(self.segmenter)
        unlabelled = np.array([bool(np.all(m == ignore)) for m in masks], dtype=bool)
        labelled = np.flatnonzero(~unlabelled)
        if len(labelled) == 0:
            raise ValueError(f"every mask is entirely ignore_index={ignore}: self-training needs at least one "
                             "labelled image to start from.")
        unlabelled = np.flatnonzero(unlabelled)
        rounds = self.n_rounds if len(unlabelled) else 0
        if rounds and not hasattr(_last_step(self.segmenter), "predict_with_uncertainty"):
            raise TypeError(f"the segmenter's last step must have predict_with_uncertainty (an MLPEnsembleClassifier, "
                            f"whose members' disagreement is the uncertainty), got {type(_last_step(self.segmenter)).__name__}.")
        if self.n_rounds and not len(unlabelled):
            warnings.warn(f"no unlabelled image (a mask entirely {ignore}): fitting the segmenter on the labelled "
                          "images only.", UserWarning, stacklevel=2)

        # Round 0 is the wrapped segmenter's own fit on the labelled images: unlabelled images change
        # the model only through the pseudo-labels of later rounds.
        segmenter = clone(self.segmenter).fit([images[i] for i in labelled], [masks[i] for i in labelled])
        transduction = list(masks)
        self.n_pseudo_pixels_, self.uncertainty_thresholds_ = [], []
        self.n_unlabelled_pixels_ = int(sum(masks[i].size for i in unlabelled))
        for _ in range(rounds):
            labels, uncertainty = self._pseudo_label(segmenter, [images[i] for i in unlabelled])
            kept = self._keep(uncertainty)
            for i, label, keep in zip(unlabelled, labels, kept):
                transduction[i] = np.where(keep, label, ignore).astype(masks[i].dtype, copy=False)
            self.n_pseudo_pixels_.append(int(sum(k.sum() for k in kept)))
            self.uncertainty_thresholds_.append(float(max(u[k].max() for u, k in zip(uncertainty, kept) if k.any())))
            # A fresh clone, as SelfTrainingClassifier refits its estimator: nothing of the last round is kept
            # but its pseudo-labels.
            segmenter = clone(self.segmenter).fit(images, transduction)
        self.segmenter_ = segmenter
        self.transduction_ = transduction
        self.n_iter_ = rounds
        return self

    @staticmethod
    def _pseudo_label(segmenter, images):
        """Labels and Jensen-Shannon uncertainty maps of ``images`` (lists of (H, W) arrays)."""
        steps = getattr(segmenter, "steps", None)
        features = segmenter[:-1] if steps else None
        clf = _last_step(segmenter)
        labels, uncertainty = [], []
        for start in range(0, len(images), PSEUDO_LABEL_BATCH):
            batch = images[start:start + PSEUDO_LABEL_BATCH]
            predicted, maps = clf.predict_with_uncertainty(batch if features is None else features.transform(batch))
            labels += [np.asarray(p) for p in predicted]
            uncertainty += [np.asarray(m, dtype=float) for m in maps]
        return labels, uncertainty

    def _keep(self, uncertainty):
        """Which pixels of each map to keep: :func:`~sklearn_ddpm.synthetic.uncertainty_filter`, per image or pooled."""
        drop = 1.0 - float(self.keep_fraction)
        if self.keep_scope == "image":
            return [uncertainty_filter(u.ravel(), drop).reshape(u.shape) for u in uncertainty]
        kept = uncertainty_filter(np.concatenate([u.ravel() for u in uncertainty]), drop)
        bounds = np.cumsum([0] + [u.size for u in uncertainty])
        return [kept[a:b].reshape(u.shape) for a, b, u in zip(bounds[:-1], bounds[1:], uncertainty)]

    @property
    def classes_(self):
        check_is_fitted(self, "segmenter_")
        return self.segmenter_.classes_

    def predict(self, X):
        """Label maps of ``X``, predicted by ``segmenter_``."""
        check_is_fitted(self, "segmenter_")
        return self.segmenter_.predict(X)

    @available_if(_segmenter_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of ``X``, from ``segmenter_``."""
        check_is_fitted(self, "segmenter_")
        return self.segmenter_.predict_proba(X)

    def score(self, X, y):
        """``segmenter_``'s score (for a sklearn-ddpm segmenter, the mIoU; unlabelled pixels skipped)."""
        check_is_fitted(self, "segmenter_")
        return self.segmenter_.score(X, y)
