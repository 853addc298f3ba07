"""``InteractiveSegmenter``: the labelling loop (scribble, fit, see, correct) without a GUI."""

import numbers
import time
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints
from sklearn.exceptions import NotFittedError
from tqdm.auto import tqdm

from ..features import DDPMFeatureTransformer, PixelFeatures
from ..segmenter import load_segmenter, make_segmenter, save_segmenter
from ..utils import check_images
from ._napari_labels import MAX_CLASSES, UNLABELLED
from ._suggest import Suggestion, uncertain_regions


def _default(estimator, name):
    import inspect

    return inspect.signature(estimator).parameters[name].default


class InteractiveSegmenter:
    """A labelling session: images, their cached DDPM features, sparse labels, and the model.

    The loop of ilastik's pixel classification and napari-convpaint, on diffusion features: add
    images, paint a few strokes (:meth:`add_labels`), :meth:`fit`, look at :meth:`predict` and
    :meth:`uncertainty`, paint where it is wrong or where :meth:`suggest` points, refit, and
    finally :meth:`save` the model as the file ``sklearn-ddpm fit`` writes (so
    ``sklearn-ddpm predict``, :func:`~sklearn_ddpm.load_segmenter` and Dask use it).

    The UNet runs once per image: the first :meth:`fit` or :meth:`predict` (or
    :meth:`extract_features`) computes the features of the session's images and keeps them, and
    every later :meth:`fit` trains only the ensemble of pixel MLPs on the labelled pixels, from
    scratch and with the same seeds, so a fit equals ``make_segmenter(...).fit(images, masks)``
    on the same labels (with the session's ``max_epochs`` and training batch, ``mlp_batch_size``).

    Labels follow the package's convention: class ``k`` is ``k``, unlabelled pixels are 255
    (napari's Labels layers use 0 = unlabelled and ``k + 1`` for class ``k``: convert with
    :func:`napari_to_mask` and :func:`mask_to_napari`). Every labelled pixel trains, however few
    (the session's classifier uses ``min_class_pixels=0``: a stroke is never noise).

    Parameters
    ----------
    model : str, path-like, Backbone, UNet2DModel or None, default=None
        The diffusion backbone, as for :func:`~sklearn_ddpm.make_segmenter`: None is the small
        horse DDPM bundled with the package; a diffusers folder, a guided-diffusion ``.pt``, a hub
        id or a :class:`~sklearn_ddpm.Backbone`.
    class_names : list of str, default=None
        Names of the classes 0..K-1; they fix ``n_classes`` and are saved in the model file
        (``class_names_``, as ``sklearn-ddpm fit --classes`` does).
    n_classes : int, default=None
        Number of classes without names; None infers the classes from the labels (and from
        ``class_names`` when given).
    steps : tuple of int, default=(50, 150, 250)
        Diffusion timesteps of the features.
    blocks : "auto" or tuple of int, default="auto"
        Decoder blocks of the features.
    n_estimators : int, default=10
        MLPs in the ensemble (their disagreement is the uncertainty).
    refine : "guided", None or GuidedFilter, default="guided"
        Edge-aware refinement of the probabilities (as :func:`~sklearn_ddpm.make_segmenter`).
    warm_start : bool, default=False
        Start refits from the previous members' weights. Not implemented: refits train from
        scratch, and True only warns. Measured on Weizmann ``labeled_pool`` strokes
        (``benchmarks/results/refit_warm_start.json``), a warm refit of 2 epochs was 3-50 times
        faster than a fresh one but scored up to 10 mIoU points lower in a round, while a fresh fit
        capped at 6 epochs (``max_epochs``) kept the quality at 1-3 CPU seconds.
    max_epochs : int, default=6
        Epochs per MLP at most, every fit from scratch. The session's default is lower than the
        estimator's (100): on a few thousand stroke pixels the reference's stop rule (at least 4
        epochs, then 50 iterations without a better batch loss) ran 4-37 CPU seconds per refit,
        6 epochs 1-3 s at a held-out mIoU no lower (``benchmarks/results/refit_warm_start.json``).
    max_pixels_per_image : int or None, default=None
        Labelled pixels sampled per image and fit; None: no per-image cap. The classifier's own
        ``max_pixels_per_class=500`` still applies (at most 500 labelled pixels of each class per
        image and fit), which bounds a refit's time however much is painted.
    mlp_batch_size : int, default=256
        Training pixels per optimizer step of the MLPs (the classifier's ``batch_size``; its
        learning rate and patience follow the large-batch rule of
        ``sklearn_ddpm.ensemble._schedule``: at 256, lr 2e-3). The arithmetic of an epoch does not
        depend on the batch, but every step has a fixed cost (an Adam update of all the members'
        weights, small matrix products, skorch's per-batch calls). Chosen among 64 (the
        reference's and the estimator's), 128 and 256 on Weizmann ``labeled_pool`` strokes by a
        rule fixed before the run (the fastest within one standard error of batch 64's held-out
        mIoU): 256 refitted in 1.2 CPU s (median) against 1.8 s at 64, with a held-out mIoU
        2.2 ± 0.6 (SE) points higher over 16 refits, 2 seeds (``benchmarks/results/refit_batch.json``).
        :func:`~sklearn_ddpm.make_segmenter` has the same default (its ``mlp_batch_size``).
    batch_size : "auto" or int, default="auto"
        Images per UNet forward pass when features are extracted.
    device : str, default="cpu"
        Device of the UNet and the MLPs.
    random_state : int, default=0
        Seed of the diffusion noise and of the MLPs; every fit uses it, so equal labels give
        equal models.
    progress : bool, default=False
        Progress bars while features are extracted and folders predicted.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted segmenter (steps ``"features"`` and ``"clf"``), as :func:`make_segmenter`
        builds it; replaced by every :meth:`fit`.
    n_fits_ : int
        Fits so far.
    fit_seconds_ : float
        Wall time of the last :meth:`fit` (the first includes the feature extraction).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.interactive import InteractiveSegmenter
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    >>> seg = InteractiveSegmenter(tiny_unet(), class_names=["background", "object"], steps=(50,),
    ...                            n_estimators=2, max_epochs=2)
    >>> seg.add_images(images)
    [0, 1]
    >>> stroke = np.full((32, 32), 255, np.uint8)
    >>> stroke[3, 2:30], stroke[20, 2:30] = 0, 1       # one stroke per class
    >>> seg.add_labels(0, stroke).n_labelled_pixels
    56
    >>> seg.fit().predict(1).shape
    (32, 32)
    >>> seg.suggest(k=2)[0].image in (0, 1)
    True
    >>> seg.save("seg.skddpm")  # doctest: +SKIP
    """

    _parameter_constraints = {
        "model": "no_validation",  # checked by the feature transformer
        "class_names": [None, list, tuple],
        "n_classes": [None, Interval(numbers.Integral, 2, MAX_CLASSES, closed="both")],
        "steps": "no_validation",
        "blocks": "no_validation",
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "refine": [None, StrOptions({"guided"}), HasMethods(["refine"])],
        "warm_start": ["boolean"],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_pixels_per_image": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "mlp_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": [Interval(numbers.Integral, 0, None, closed="left")],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        model=None,
        *,
        class_names=None,
        n_classes=None,
        steps=_default(DDPMFeatureTransformer, "steps"),
        blocks=_default(DDPMFeatureTransformer, "blocks"),
        n_estimators=10,
        refine="guided",
        warm_start=False,
        max_epochs=6,
        max_pixels_per_image=None,
        mlp_batch_size=256,
        batch_size="auto",
        device="cpu",
        random_state=0,
        progress=False,
    ):
        self.model = model
        self.class_names = class_names
        self.n_classes = n_classes
        self.steps = steps
        self.blocks = blocks
        self.n_estimators = n_estimators
        self.refine = refine
        self.warm_start = warm_start
        self.max_epochs = max_epochs
        self.max_pixels_per_image = max_pixels_per_image
        self.mlp_batch_size = mlp_batch_size
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.progress = progress
        # The session's state (not parameters): images, labels, features, predictions.
        self._images, self._labels, self._names, self._features = [], [], [], []
        self._outputs = (None, {})  # (model, {image: (labels, uncertainty)}): swapped as one, by fit
        self._transformer = None  # fitted once: it holds the loaded backbone
        self._clf = None  # the unfitted classifier every fit clones
        self._labels_changed = False

    def __repr__(self):
        fitted = "fitted" if hasattr(self, "pipeline_") else "not fitted"
        return (f"InteractiveSegmenter(images={len(self._images)}, labelled_pixels={self.n_labelled_pixels}, "
                f"classes={self.n_classes_ if self._n_classes() else 'from the labels'}, {fitted})")

    # -- images and labels -----------------------------------------------------------------------
    def add_images(self, images, names=None):
        """Add images to the session (their features are computed when first needed).

        Parameters
        ----------
        images : list of ndarray or ndarray
            ``(H, W, 3)`` RGB uint8 images (or floats in [0, 1]); ``(H, W)`` grayscale images are
            repeated into three channels and an alpha channel is dropped. Sizes may differ.
        names : list of str, default=None
            A name per image (e.g. its file name), saved in the model file as
            ``training_files_`` for the labelled ones; None names them "image 0", "image 1", ...

        Returns
        -------
        list of int
            The images' indices in the session.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3) and (images.ndim == 2 or images.shape[-1] in (3, 4)):
            raise ValueError(f"images must be a list of images or an (N, H, W, 3) array; got one array of shape "
                             f"{images.shape}: pass [image] for a single image.")
        items = [_as_rgb(np.asarray(image)) for image in images]
        items = check_images(items, name="images")
        if names is not None and len(names) != len(items):
            raise ValueError(f"names has {len(names)} entries for {len(items)} images.")
        start = len(self._images)
        for k, image in enumerate(items):
            self._images.append(np.ascontiguousarray(image))
            self._labels.append(np.full(image.shape[:2], UNLABELLED, np.uint8))
            self._names.append(str(names[k]) if names is not None else f"image {start + k}")
            self._features.append(None)
        return list(range(start, len(self._images)))

    @property
    def n_images(self):
        """Images in the session."""
        return len(self._images)

    def image(self, i):
        """Image ``i`` of the session, ``(H, W, 3)`` uint8."""
        return self._images[self._index(i)]

    def set_labels(self, i, mask):
        """Replace the labels of image ``i``.

        Parameters
        ----------
        i : int
            The image's index.
        mask : array-like of int, shape (H, W)
            Class indices, 255 = unlabelled; the image's size.

        Returns
        -------
        self
        """
        i = self._index(i)
        self._labels[i] = self._check_mask(i, mask)
        self._labels_changed = True
        return self

    def add_labels(self, i, mask):
        """Merge labels into image ``i``'s: labelled pixels of ``mask`` overwrite, 255 leaves as is.

        Parameters
        ----------
        i : int
            The image's index.
        mask : array-like of int, shape (H, W)
            Class indices, 255 = unlabelled; the image's size.

        Returns
        -------
        self
        """
        i = self._index(i)
        mask = self._check_mask(i, mask)
        # A new array, not an in-place edit: a fit running in another thread keeps the labels it started with.
        self._labels[i] = np.where(mask != UNLABELLED, mask, self._labels[i]).astype(np.uint8)
        self._labels_changed = True
        return self

    def labels(self, i):
        """The current labels of image ``i``: ``(H, W)`` uint8, 255 = unlabelled (a copy)."""
        return self._labels[self._index(i)].copy()

    @property
    def n_labelled_pixels(self):
        """Labelled pixels over all images."""
        return int(sum(np.count_nonzero(m != UNLABELLED) for m in self._labels))

    @property
    def labelled_images(self):
        """Indices of the images with at least one labelled pixel."""
        return [i for i, m in enumerate(self._labels) if (m != UNLABELLED).any()]

    @property
    def needs_fit(self):
        """Whether labels changed since the last :meth:`fit` (or nothing was fitted yet)."""
        return self._labels_changed or not hasattr(self, "pipeline_")

    @property
    def n_classes_(self):
        """Number of classes: from ``class_names``/``n_classes``, else from the labels and the model."""
        fixed = self._n_classes()
        if fixed:
            return fixed
        seen = [int(m[m != UNLABELLED].max()) + 1 for m in self._labels if (m != UNLABELLED).any()]
        if hasattr(self, "pipeline_"):
            seen.append(int(max(self.pipeline_[-1].classes_)) + 1)
        return max(seen, default=0)

    @property
    def class_names_(self):
        """A name for every class: ``class_names``, then "class k"."""
        from ..datasets._folders import default_class_names

        return default_class_names(self.n_classes_, self.class_names)

    # -- features --------------------------------------------------------------------------------
    def extract_features(self):
        """Compute the features of every image that has none yet (the only step that runs the UNet).

        :meth:`fit` and :meth:`predict` call it; call it yourself to pay the extraction up front
        (e.g. in a worker thread of a GUI).

        Returns
        -------
        int
            Images whose features were computed.
        """
        self._prepare()
        todo = [i for i, f in enumerate(self._features) if f is None]
        if not todo:
            return 0
        # One transform call: the images share forward passes as in the pipeline's own fit.
        features = self._transformer.transform([self._images[i] for i in todo])
        for row, i in enumerate(todo):
            self._features[i] = _one_image(features, row)
        return len(todo)

    def _prepare(self):
        """Validate the parameters and load the backbone, once."""
        if self._transformer is not None:
            return
        validate_parameter_constraints(self._parameter_constraints, self._params(), type(self).__name__)
        if self.warm_start:
            warnings.warn("warm_start=True is not implemented: refits train from scratch (a warm start lost up to "
                          "10 mIoU points in benchmarks/results/refit_warm_start.json).", UserWarning, stacklevel=3)
        n_classes = self._n_classes()
        pipeline = make_segmenter(
            self.model, steps=self.steps, blocks=self.blocks, batch_size=self.batch_size,
            n_estimators=self.n_estimators, max_epochs=self.max_epochs, max_pixels_per_image=self.max_pixels_per_image,
            # Every painted pixel is meant: no speck rule (it suits dense masks only).
            min_class_pixels=0, n_classes=n_classes, refine=self.refine, device=self.device,
            random_state=self.random_state, progress=self.progress, mlp_batch_size=self.mlp_batch_size)
        self._transformer = pipeline[0].fit()
        self._clf = pipeline[-1]

    def _n_classes(self):
        if self.class_names is not None:
            if len(self.class_names) < 2 or len(self.class_names) > MAX_CLASSES:
                raise ValueError(f"class_names must name 2 to {MAX_CLASSES} classes, got {len(self.class_names)}.")
            if self.n_classes is not None and self.n_classes != len(self.class_names):
                raise ValueError(f"n_classes={self.n_classes} but class_names names {len(self.class_names)} classes.")
            return len(self.class_names)
        return self.n_classes

    # -- fitting and prediction ------------------------------------------------------------------
    def fit(self):
        """Train the ensemble on the labelled pixels of the session's images.

        Features are extracted for images that have none; the UNet never runs again for the
        others. The labels are read when the fit starts, so labels may be edited while it runs
        (e.g. in another thread); the new model replaces the old one when it is done.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            When fewer than two classes are labelled.
        """
        start = time.perf_counter()
        self._prepare()
        labels = list(self._labels)  # the arrays are replaced, never edited: this is a snapshot
        self._labels_changed = False
        labelled = [i for i, m in enumerate(labels) if (m != UNLABELLED).any()]
        present = sorted({int(v) for i in labelled for v in np.unique(labels[i])} - {UNLABELLED})
        if len(present) < 2:
            self._labels_changed = True
            found = f"only class {present[0]}" if present else "no labelled pixel"
            raise ValueError(f"the session's labels hold {found}; label at least two classes (add_labels) "
                             "before fit.")
        self.extract_features()
        features = _concatenate([self._features[i] for i in labelled])
        clf = clone(self._clf).fit(features, [labels[i] for i in labelled])
        pipeline = Pipeline([("features", self._transformer), ("clf", clf)])
        self._outputs = (pipeline, {})
        self.pipeline_ = pipeline
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict(self, i):
        """Label map of session image ``i``, ``(H, W)`` int."""
        return self._labels_and_uncertainty(i)[0]

    def uncertainty(self, i):
        """Jensen-Shannon divergence of the members on session image ``i``, ``(H, W)`` float (nats)."""
        return self._labels_and_uncertainty(i)[1]

    def predict_with_uncertainty(self, i):
        """Label map and uncertainty of session image ``i`` from one pass over the members."""
        return self._labels_and_uncertainty(i)

    def predict_proba(self, i):
        """Class probabilities of session image ``i``, ``(H, W, K)`` (refined as ``refine`` says)."""
        self._check_fitted()
        return self.pipeline_[-1].predict_proba(self._features_of(self._index(i)))[0]

    def _labels_and_uncertainty(self, i):
        self._check_fitted()
        i = self._index(i)
        pipeline, outputs = self._outputs  # one model's, even if a fit ends meanwhile
        if pipeline is not self.pipeline_:  # loaded, not fitted here
            pipeline, outputs = self._outputs = (self.pipeline_, {})
        if i not in outputs:
            labels, uncertainty = pipeline[-1].predict_with_uncertainty(self._features_of(i))
            outputs[i] = (labels[0], uncertainty[0])
        return outputs[i]

    def _features_of(self, i):
        if self._features[i] is None:
            self.extract_features()
        return self._features[i]

    def predict_images(self, images, progress=False):
        """Segment new images with the current model (they are not added to the session).

        Parameters
        ----------
        images : list of ndarray
            RGB images, any sizes.
        progress : bool, default=False
            Show a progress bar.

        Returns
        -------
        list of ndarray
            One ``(H, W)`` label map per image.
        """
        self._check_fitted()
        images = check_images([_as_rgb(np.asarray(image)) for image in images], name="images")
        pipeline = self.pipeline_
        chunk = pipeline[0].forward_batch_size()
        out = []
        for start in tqdm(range(0, len(images), chunk), desc="predict", unit="batch", disable=not progress):
            labels = pipeline.predict(images[start:start + chunk])
            out += list(labels)
        return out

    # -- where to label next ---------------------------------------------------------------------
    def suggest(self, k=5, images=None, *, threshold="auto", min_pixels="auto", score="sum"):
        """The ``k`` regions where the members disagree most: where to label next.

        Each image's uncertainty map (the members' Jensen-Shannon divergence) is thresholded;
        its 8-connected regions, minus the pixels already labelled, are scored and the best
        ``k`` over the images are returned.

        Parameters
        ----------
        k : int, default=5
            Regions to return (fewer when fewer exist).
        images : list of int, default=None
            Session images to look at; None: all of them (their features are extracted).
        threshold : "auto" or float, default="auto"
            Uncertainty (nats) a pixel needs to be part of a region; "auto" is the 95th
            percentile of the unlabelled pixels of ``images`` (their top 5 %), at least 1e-6.
        min_pixels : "auto" or int, default="auto"
            Smaller regions are left out; "auto" is 0.05 % of an image's pixels (131 at 512²),
            at least 4.
        score : {"sum", "mean"}, default="sum"
            A region's score: its summed uncertainty (large disagreeing regions first) or its mean.

        Returns
        -------
        list of Suggestion
            Best first.
        """
        self._check_fitted()
        if not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}.")
        if score not in ("sum", "mean"):
            raise ValueError(f"score must be 'sum' or 'mean', got {score!r}.")
        indices = list(range(self.n_images)) if images is None else [self._index(i) for i in images]
        maps = {i: self.uncertainty(i) for i in indices}
        if isinstance(threshold, str):
            if threshold != "auto":
                raise ValueError(f"threshold must be 'auto' or a number, got {threshold!r}.")
            # over the unlabelled pixels: labelled ones are never suggested
            pooled = np.concatenate([m[self._labels[i] == UNLABELLED] for i, m in maps.items()] + [np.zeros(0)])
            pooled = pooled if pooled.size else np.zeros(1)
            threshold = max(float(np.percentile(pooled, 95)), 1e-6)
        found = []
        for i, uncertainty in maps.items():
            smallest = max(4, round(5e-4 * uncertainty.size)) if min_pixels == "auto" else int(min_pixels)
            for bbox, mask, value in uncertain_regions(uncertainty, threshold, min_pixels=smallest, score=score,
                                                        exclude=self._labels[i] != UNLABELLED):
                found.append(Suggestion(image=i, bbox=bbox, mask=mask, score=value))
        found.sort(key=lambda s: -s.score)
        return found[:k]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path):
        """Save the model as the file ``sklearn-ddpm fit`` writes (the images and labels are not in it).

        ``sklearn-ddpm predict``, :func:`~sklearn_ddpm.load_segmenter` and :meth:`load` read it.
        **The file is a pickle: it can execute code when loaded; share it only with people who
        trust you.**

        Parameters
        ----------
        path : str or path-like
            The model file (``.skddpm`` by convention); its folder must exist.

        Returns
        -------
        pathlib.Path
        """
        self._check_fitted()
        return save_segmenter(self.pipeline_, path, class_names=self.class_names,
                              training_files=[self._names[i] for i in self.labelled_images])

    @classmethod
    def load(cls, path, *, device=None, progress=False):
        """Continue from a model file (of :meth:`save` or ``sklearn-ddpm fit``), without images.

        The session's classifier is the file's, with ``min_class_pixels=0``; :meth:`fit` retrains
        it on the labels added to the new session.

        Parameters
        ----------
        path : str or path-like
            The model file. **It can execute code when loaded: only load files you trust.**
        device : str, default=None
            As :func:`~sklearn_ddpm.load_segmenter`.
        progress : bool, default=False

        Returns
        -------
        InteractiveSegmenter
        """
        pipeline = load_segmenter(path, device=device)
        features, clf = pipeline[0], pipeline[-1]
        class_names = getattr(pipeline, "class_names_", None)
        session = cls(
            features.backbone_, class_names=class_names,
            n_classes=None if class_names else clf.n_classes, steps=features.steps_, blocks=features.blocks_,
            n_estimators=clf.n_estimators, refine=clf.refine, max_epochs=clf.max_epochs,
            max_pixels_per_image=clf.max_pixels_per_image, mlp_batch_size=clf.batch_size,
            batch_size=features.batch_size,
            device=str(clf.device), random_state=int(features.noise_seed_), progress=progress)
        features.set_params(progress=progress)
        session._transformer = features
        session._clf = clone(clf).set_params(min_class_pixels=0)
        session.pipeline_ = pipeline
        session.n_fits_ = 0
        session._labels_changed = False
        return session

    # -- helpers ---------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "pipeline_"):
            raise NotFittedError("this InteractiveSegmenter is not fitted yet: label at least two classes "
                                 "(add_labels) and call fit() first.")

    def _params(self):
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def _index(self, i):
        if not isinstance(i, numbers.Integral) or not -self.n_images <= i < self.n_images:
            raise IndexError(f"image index {i!r} is out of range: the session holds {self.n_images} images.")
        return int(i) % self.n_images

    def _check_mask(self, i, mask):
        mask = np.asarray(mask)
        height, width = self._images[i].shape[:2]
        if mask.shape != (height, width):
            raise ValueError(f"the mask of image {i} has shape {mask.shape}; the image is {(height, width)}.")
        if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
            raise ValueError(f"the mask of image {i} must hold integer class indices, got dtype {mask.dtype}.")
        limit = self._n_classes() or MAX_CLASSES
        bad = ((mask < 0) | (mask >= limit)) & (mask != UNLABELLED)
        if bad.any():
            raise ValueError(f"the mask of image {i} has labels {np.unique(mask[bad])[:5].tolist()} outside the "
                             f"classes 0..{limit - 1}; unlabelled pixels are {UNLABELLED} (napari labels: convert "
                             "them with napari_to_mask).")
        return mask.astype(np.uint8)


def _as_rgb(image):
    """Grayscale images repeated into three channels; an alpha channel dropped."""
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.ndim == 3 and image.shape[-1] == 4:
        return image[..., :3]
    return image


def _one_image(features, row):
    """Image ``row`` of ``features`` as a one-image ``PixelFeatures`` that views, not copies, its maps."""
    return PixelFeatures([m[row:row + 1] for m in features.maps], features.layer_names,
                         features.image_sizes[row:row + 1], images=[features.images[row]])


def _concatenate(parts):
    """One ``PixelFeatures`` of several one-image ones (the one itself when there is one)."""
    if len(parts) == 1:
        return parts[0]
    maps = [torch.cat([p.maps[j] for p in parts]) for j in range(len(parts[0].maps))]
    return PixelFeatures(maps, parts[0].layer_names, np.concatenate([p.image_sizes for p in parts]),
                         images=[image for p in parts for image in p.images])
