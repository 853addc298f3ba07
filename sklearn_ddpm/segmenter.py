"""A whole segmenter: assemble the feature pipeline, or load one that ``sklearn-ddpm fit`` saved.

A segmenter is a scikit-learn :class:`~sklearn.pipeline.Pipeline` of a
:class:`~sklearn_ddpm.DDPMFeatureTransformer` (step ``"features"``) and an
:class:`~sklearn_ddpm.MLPEnsembleClassifier` (step ``"clf"``): ``fit(images, masks)``,
``predict(images)`` returns one label map per image at the image's own size.

Security: :func:`save_segmenter` writes the safe format of :mod:`sklearn_ddpm.io` (loading it runs
no code from the file); :func:`load_segmenter` refuses joblib (pickle) files, which execute code
when they are loaded, unless ``trust_pickle=True``.
"""

import inspect
from pathlib import Path

from sklearn.pipeline import Pipeline

from .ensemble import MLPEnsembleClassifier
from .features import DDPMFeatureTransformer
from .postprocessing import GuidedFilter


def _default(estimator, name):
    # The estimators own their defaults; make_segmenter only shows them in its signature.
    return inspect.signature(estimator).parameters[name].default


def make_segmenter(
    model=None,
    *,
    blocks=_default(DDPMFeatureTransformer, "blocks"),
    steps=_default(DDPMFeatureTransformer, "steps"),
    image_size=_default(DDPMFeatureTransformer, "image_size"),
    prompt=_default(DDPMFeatureTransformer, "prompt"),
    batch_size=_default(DDPMFeatureTransformer, "batch_size"),
    n_estimators=_default(MLPEnsembleClassifier, "n_estimators"),
    max_epochs=_default(MLPEnsembleClassifier, "max_epochs"),
    max_pixels_per_image=_default(MLPEnsembleClassifier, "max_pixels_per_image"),
    max_pixels_per_class=_default(MLPEnsembleClassifier, "max_pixels_per_class"),
    min_class_pixels=_default(MLPEnsembleClassifier, "min_class_pixels"),
    n_classes=_default(MLPEnsembleClassifier, "n_classes"),
    mlp_batch_size=256,
    standardize=True,
    memory=_default(DDPMFeatureTransformer, "memory"),
    flip_tta=_default(DDPMFeatureTransformer, "flip_tta"),
    refine="guided",
    device="cpu",
    random_state=0,
    progress=False,
):
    """Assemble an unfitted segmenter: DDPM pixel features, then an ensemble of pixel MLPs.

    Every default is the estimators' own, except three chosen for the product by cross-validation
    (``refine``, ``mlp_batch_size``, ``standardize``; see each); set any other parameter afterwards with
    ``set_params(features__<name>=...)`` or ``set_params(clf__<name>=...)``.

    Parameters
    ----------
    model : str, path-like, Backbone, UNet2DModel or None, default=None
        The diffusion backbone (see :class:`~sklearn_ddpm.DDPMFeatureTransformer`); None uses the
        small horse DDPM bundled with the package.
    blocks : "auto" or tuple of int, default="auto"
        Decoder blocks to read.
    steps : tuple of int, default=(50, 150, 250)
        Diffusion timesteps.
    image_size : int, (int, int) or None, default=None
        Model input size; None uses the model's.
    prompt : str, default=""
        Text prompt of a text-conditioned (Stable-Diffusion-style) backbone; "" for the others.
    batch_size : "auto" or int
        Images per UNet forward pass (one pass per timestep of ``steps``); the default is the
        transformer's ("auto": what fits the device's memory budget).
    n_estimators : int, default=10
        MLPs in the ensemble.
    max_epochs : int, default=100
        Epochs per MLP at most.
    max_pixels_per_image : int or None, default=None
        Labelled pixels sampled per image; None: no per-image cap.
    max_pixels_per_class : int or None, default=500
        Labelled pixels sampled per class and image (class-balanced); None with no per-image cap
        trains on every labelled pixel (the paper; slow on a CPU). See
        :class:`~sklearn_ddpm.MLPEnsembleClassifier`.
    min_class_pixels : int or "auto", default="auto"
        Classes with fewer labelled pixels in an image are left out of that image. "auto": 20 in
        images at least half labelled (dense masks), 0 in sparser ones (scribbles), so sparse
        masks train without a flag; 0 keeps every labelled pixel.
    n_classes : int or None, default=None
        Fix the number of classes (labels ``0..n_classes-1``); None infers it from the masks.
    mlp_batch_size : int, default=256
        Training batch of the pixel MLPs (the classifier's ``batch_size``; its learning rate and
        patience follow the classifier's large-batch rule). 256, not the reference's 64 (the
        classifier's own default): chosen by a rule fixed
        before the run (within one standard error of batch 64's GroupKFold(4) CV mIoU on the
        Weizmann ``labeled_pool`` and >= 1.3x fewer CPU seconds), which batch 256 met with CV 86.0
        against 85.8 in 1.63x fewer CPU seconds (``benchmarks/results/ensemble_speed.json``).
    standardize : bool, default=True
        Train the MLPs on standardized features (the classifier's ``standardize``; folded into the
        first layer after training, so prediction costs the same). True, not the paper's raw
        features (the classifier's own default): on raw features more than half of the first-layer
        units die in long fits (their shared mean pushes a unit below zero on every pixel at once;
        ``benchmarks/results/nan_dead_units.json``: none die when standardized), and a rule fixed
        before the run (not worse than raw by more than one standard error of the paired
        GroupKFold(4) fold differences, on Weizmann and on CCP ``labeled_pool[:20]``) kept it:
        ``benchmarks/results/standardize_default.json``.
    memory : see :class:`~sklearn_ddpm.DDPMFeatureTransformer`
        Cache of backbone activations.
    flip_tta : bool, default=False
        Test-time flip augmentation: predictions average every member's probabilities on the
        image and on its mirror (twice the feature extraction at prediction).
    refine : "guided", None or :class:`~sklearn_ddpm.postprocessing.GuidedFilter`, default="guided"
        Edge-aware refinement of the class probabilities, guided by the image: "guided" is
        ``GuidedFilter()`` (radius 16, eps 1e-3), None the members' plain majority vote. The
        default pipeline refines because cross-validation on the Weizmann ``labeled_pool`` chose
        it over the vote, flip averaging and both together
        (``benchmarks/results/weizmann_levers_n20.json``).
    device : str, default="cpu"
        Device of the feature extractor and of the MLPs.
    random_state : int, default=0
        Seed of both the diffusion noise and the MLPs.
    progress : bool, default=False
        Show progress bars: the feature extraction's, and one over the ensemble's training epochs
        with its early stop's state.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"features"`` and ``"clf"``, unfitted.

    Examples
    --------
    >>> from sklearn_ddpm import make_segmenter
    >>> segmenter = make_segmenter(steps=(50, 150), n_estimators=4)
    >>> [name for name, _ in segmenter.steps]
    ['features', 'clf']
    >>> segmenter.fit(images, masks).predict(new_images)  # doctest: +SKIP
    """
    return Pipeline([
        ("features", DDPMFeatureTransformer(
            model, blocks=blocks, steps=steps, image_size=image_size, prompt=prompt, batch_size=batch_size,
            device=device,
            memory=memory, random_state=random_state, progress=progress, flip_tta=flip_tta)),
        ("clf", MLPEnsembleClassifier(
            n_estimators=n_estimators, max_epochs=max_epochs, max_pixels_per_image=max_pixels_per_image,
            max_pixels_per_class=max_pixels_per_class,
            min_class_pixels=min_class_pixels, n_classes=n_classes, batch_size=mlp_batch_size,
            standardize=standardize, refine=GuidedFilter() if isinstance(refine, str) and refine == "guided" else refine, device=device,
            random_state=random_state, progress=progress)),
    ])


def save_segmenter(pipeline, path, *, class_names=None, training_files=None):
    """Write a fitted segmenter to the file ``sklearn-ddpm fit`` writes (one function for both).

    The pipeline gets the attributes ``sklearn-ddpm predict`` and ``evaluate`` read:
    ``class_names_``, ``versions_`` (package versions) and ``training_files_``. The file is in
    the safe format of :mod:`sklearn_ddpm.io` (safetensors + JSON: loading it runs no code from
    the file), whatever its name; it is written to a temporary name and renamed, so a failure
    never leaves a truncated model. ``joblib.dump(pipeline, ...)`` still works for a pickle.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, as :func:`make_segmenter` builds it.
    path : str or path-like
        The model file (``.skddpm`` by convention); its folder must exist.
    class_names : list of str, default=None
        Names of the classes 0..K-1 (None: "class 0", "class 1", ...).
    training_files : list of str, default=None
        Names of the images it was fitted on, for the record.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from sklearn_ddpm.segmenter import save_segmenter
    >>> save_segmenter(pipeline, "seg.skddpm", class_names=["background", "horse"])  # doctest: +SKIP
    """
    from sklearn.utils.validation import check_is_fitted

    from .io import save_model
    from .utils._persistence import current_versions

    check_is_fitted(pipeline)
    pipeline.class_names_ = None if class_names is None else [str(name) for name in class_names]
    pipeline.versions_ = current_versions()
    pipeline.training_files_ = None if training_files is None else [str(name) for name in training_files]
    return save_model(pipeline, Path(path))


def load_segmenter(path, device=None, batch_size=None, *, trust_pickle=False):
    """Load a segmenter saved by ``sklearn-ddpm fit`` (or any fitted sklearn-ddpm ``Pipeline``).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_segmenter` (``sklearn-ddpm fit``): loading it runs no code
        from the file. The format is recognised from the content, not the name.
    trust_pickle : bool, default=False
        Also load a joblib/pickle file (e.g. one written by an older ``sklearn-ddpm fit``).
        **Unpickling runs whatever code the file holds: only for files you trust.** Without it
        such a file is refused before any of it is read as a pickle. The one switch for the
        command line (``--trust-pickle``), Dask workers and the napari plugin.
    device : str, default=None
        Run the feature extractor and the MLPs on this device; None keeps the fitted one (the CPU,
        with a warning, when that was CUDA and CUDA is absent).
    batch_size : int, default=None
        Images per UNet forward pass (as :func:`make_segmenter`); None keeps the fitted value.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted. One :class:`~sklearn_ddpm.utils._persistence.VersionMismatchWarning` naming the
        file is emitted when it was saved with other package versions.

    Raises
    ------
    FileNotFoundError, sklearn.exceptions.NotFittedError
    sklearn_ddpm.io.UnsafeModelFileError
        A pickle/joblib file without ``trust_pickle=True`` (a ``ValueError``).
    ValueError
        A damaged file, one from a newer version, or one that holds something else.

    Examples
    --------
    >>> from sklearn_ddpm import load_segmenter
    >>> pipeline = load_segmenter("seg.skddpm")  # doctest: +SKIP
    >>> labels = pipeline.predict([image])  # doctest: +SKIP
    """
    from sklearn.utils.validation import check_is_fitted

    from .io import load_model
    from .utils import resolve_device

    path = Path(path)
    pipeline = load_model(path, trust_pickle=trust_pickle)  # warns once for the file's versions
    steps = getattr(pipeline, "steps", None)
    if not steps or not isinstance(steps[0][1], DDPMFeatureTransformer) or not isinstance(steps[-1][1], MLPEnsembleClassifier):
        raise ValueError(f"{path} holds a {type(pipeline).__name__}, not a Pipeline of a DDPMFeatureTransformer "
                         "and an MLPEnsembleClassifier as written by `sklearn-ddpm fit`.")
    check_is_fitted(pipeline)
    check_is_fitted(pipeline[0], "backbone_")
    features, clf = pipeline[0], pipeline[-1]
    if batch_size is not None:
        features.set_params(batch_size=batch_size)
    target = resolve_device(device if device is not None else clf.device, fitting=device is not None)
    if device is not None or target.type != str(clf.device).split(":")[0]:
        features.set_params(device=str(target))
        clf.set_params(device=str(target))
        # The fitted net is moved in place: skorch's set_params(device=...) would re-initialise it.
        clf.net_.module_.to(target)
        clf.net_.device = str(target)
    return pipeline
