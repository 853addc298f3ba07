"""``select_segmenter``: the segmenter's settings chosen by cross-validation on the user's images."""

import functools
import json
import time
import types

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, check_cv

from ..features import ActivationCache
from ..segmenter import make_segmenter
from ._budget import parse_budget
from ._presets import ALL_BLOCKS, resolve_search
from ._shared_fits import _FitMemo, _FitSharing
from ._staged import _StagedSearchCV

#: Bound on the activations the search keeps in memory (every image x step x block x noise setting
#: of the search; 20 Weizmann horses through every block of the bundled DDPM at 4 steps and two
#: noise settings take about 0.4 GiB).
CACHE_BYTES = 2 * 2**30


def default_cv(n_images):
    """The folds :func:`select_segmenter` uses for ``n_images`` labelled images.

    One image per group (an image is one sample, so no image is split across folds): leave one
    image out up to 5 images, 5 folds up to 19 images (at least 4 training images a fold), 4 folds
    from 20 on (as ``benchmarks/ccp_cv_protocol.py``: 15 of 20 images train, 5 validate).

    Examples
    --------
    >>> from sklearn_ddpm.model_selection import default_cv
    >>> default_cv(5).n_splits, default_cv(12).n_splits, default_cv(20).n_splits
    (5, 5, 4)
    """
    if n_images < 2:
        raise ValueError(f"cross-validation needs at least 2 labelled images, got {n_images}.")
    return GroupKFold(n_splits=min(n_images, 5) if n_images < 20 else 4)


class SelectionResult:
    """What :func:`select_segmenter` chose, the fitted segmenter, and the CV table behind the choice.

    Attributes
    ----------
    segmenter_ : sklearn.pipeline.Pipeline
        The chosen settings, refitted on all labelled images (None with ``refit=False``).
    best_params_ : dict
        The chosen pipeline parameters: those of the best candidate and the search space's
        ``"start"`` (the rest are the segmenter's, as given to :func:`select_segmenter`).
    best_score_ : float
        The chosen candidate's mean CV score.
    cv_results_ : dict of lists
        One row per cross-validated candidate (``pandas.DataFrame(cv_results_)`` shows it):
        ``stage``, ``params``, ``mean_test_score``, ``fold_std_test_score`` (sample standard
        deviation over folds, ddof=1), ``split<k>_test_score``, ``mean_fit_time``,
        ``mean_score_time`` (seconds per fold) and ``seconds`` (the candidate's wall time).
    skipped_ : list of dict
        Candidates the budget left out (stage and parameters).
    stopped_by_budget_ : bool
    search_ : the fitted search (scikit-learn's ``cv_results_`` with masked parameter columns).
    seconds_ : dict
        ``search``, ``refit`` and ``total`` wall seconds.
    fits_ : dict or None
        Fold fits of the search: ``fitted`` (trained) and ``reused`` (candidates that differ from
        an earlier one only in prediction-time parameters, scored on a copy of its fit); None
        with ``n_jobs`` > 1 (each process keeps its own).
    budget_ : float or None
        The budget in seconds.
    n_splits_ : int
    proxy_ : dict
        Settings used only while cross-validating, replaced at the refit.
    search_space_ : dict
        The search space: the preset's ``name`` (None for the caller's grids), ``start``,
        ``proxy``, ``stages`` and ``required_stages``.
    """

    def __init__(self, **attributes):
        for name, value in attributes.items():
            setattr(self, name, value)

    def __repr__(self):
        return (f"SelectionResult(best_score_={self.best_score_:.4f}, best_params_={self.best_params_}, "
                f"candidates={len(self.cv_results_['params'])}, stopped_by_budget_={self.stopped_by_budget_})")

    def to_dict(self):
        """The choice and the CV table as JSON-compatible data (what ``sklearn-ddpm fit --select`` writes)."""
        return _jsonable({
            "best_params": self.best_params_, "best_score": self.best_score_, "n_splits": self.n_splits_,
            "n_images": self.n_images_, "scoring": self.scoring_, "budget_seconds": self.budget_,
            "stopped_by_budget": self.stopped_by_budget_, "seconds": self.seconds_, "proxy": self.proxy_,
            "start": self.start_, "search": self.search_space_, "cv_results": self.cv_results_,
            "skipped": self.skipped_, "fits": self.fits_,
        })

    def write_json(self, path):
        """Write :meth:`to_dict` to ``path`` (atomically) and return the path."""
        from ..utils._atomic import atomic_write

        with atomic_write(path, mode="w") as f:
            f.write(json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (types.FunctionType, functools.partial)):  # a callable stage: its name, not its address
        function = getattr(value, "func", value)
        return f"{function.__module__}.{function.__qualname__}"
    return repr(value)  # estimators (the guided filter): scikit-learn's repr names their non-default parameters


def select_segmenter(images, masks, *, model=None, search="default", budget="20m", cv=None, groups=None,
                     scoring=None, random_state=0, n_jobs=None, progress=True, refit=True, **segmenter_params):
    """Choose the segmenter's settings by cross-validation on the labelled images, then refit.

    The candidates of a search space (:data:`~sklearn_ddpm.model_selection.SEARCH_PRESETS`, or
    the caller's grids) are cross-validated on ``images`` and ``masks`` only, with folds of whole
    images; the best mean CV score wins, and its settings are refitted on all the images. One
    :class:`~sklearn_ddpm.ActivationCache` is shared by every candidate and fold, and each image
    passes through the UNet alone, so its activations at a step (and noise setting) are computed
    once for the whole search. Candidates that differ only in prediction-time parameters (those an
    estimator lists in ``_prediction_params``: the classifier's ``refine``, ``voting`` and
    ``predict_batch_size``, the transformer's ``flip_tta``) share one fit per fold: the later ones
    are scored on a copy of the earlier fit with their own prediction-time settings.

    Parameters
    ----------
    images : list of (H, W, 3) uint8 arrays
        The labelled images (sizes may differ).
    masks : list of (H, W) int arrays
        Class indices, 255 = unlabelled.
    model : str, path-like, Backbone, UNet2DModel or None, default=None
        The diffusion backbone (:func:`~sklearn_ddpm.make_segmenter`); None: the bundled horse
        DDPM. Loaded once and shared by every candidate.
    search : str, dict or list, default="default"
        A preset name (``"quick"``, ``"default"``, ``"full"``), a ``param_grid`` dict (one stage,
        every combination, as :class:`~sklearn.model_selection.GridSearchCV`), a list of stages
        (each a ``param_grid``, run in order, each from the best before it; or a callable that
        returns a stage's ``param_grid`` from the results so far), or a whole search space (a dict
        with ``"stages"``, ``"start"``, ``"proxy"``, ``"required_stages"``); see
        :mod:`sklearn_ddpm.model_selection._presets`.
    budget : None, float or str, default="20m"
        Time for the whole call, search and refit: seconds or a duration (``"20m"``, ``"1h"``).
        No candidate starts when it is not expected to finish within the budget, keeping time for
        the refit (estimated from the best candidate's fit time); the best candidate so far is then
        refitted, and the skipped candidates are listed in ``skipped_``. The first candidate
        (and every candidate of the search space's ``"required_stages"``) always runs, so a
        budget shorter than one candidate is exceeded. With ``refit=False`` no time is kept for a
        refit. None: run every stage.
    cv : int, cross-validation splitter or None, default=None
        None: :func:`default_cv` (``GroupKFold``, one image per group); an int: ``GroupKFold``
        with that many folds; or any splitter (given ``groups``).
    groups : array-like of shape (n_images,) or None, default=None
        Group of each image (e.g. crops of one photo share a group, so no group is split across
        folds); None: every image is its own group.
    scoring : str, callable or None, default=None
        As scikit-learn's ``scoring``; None: the pipeline's ``score``, the mIoU over the validation
        images' pixels (:func:`~sklearn_ddpm.miou_score`).
    random_state : int, default=0
        Seed of the diffusion noise and the MLPs, the same for every candidate.
    n_jobs : int or None, default=None
        Folds fitted in parallel processes (joblib). Each process has its own cache.
    progress : bool, default=True
        A progress bar over the candidates with the best score and the budget left.
    refit : bool, default=True
        Refit the chosen settings on all the images (``segmenter_``); False leaves ``segmenter_``
        None, for a caller that only wants the CV table (a benchmark comparing candidates).
    **segmenter_params
        Keywords of :func:`~sklearn_ddpm.make_segmenter` (``n_estimators``, ``n_classes``,
        ``device``, ...) and pipeline parameters (``clf__lr``, ``features__noise``, ...): fixed
        settings, for the search and the refit. The stages do not vary a setting given here (e.g.
        ``steps=(50,)`` takes the steps out of the search), and it replaces the search space's
        ``"start"`` value.

    Returns
    -------
    SelectionResult
        ``segmenter_`` (fitted on all images), ``best_params_``, ``best_score_``,
        ``cv_results_``, ``seconds_``, ``skipped_``.

    Raises
    ------
    ValueError
        Fewer than 2 images, images and masks of different counts, an unknown preset, a bad budget.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import load_horses
    >>> from sklearn_ddpm.model_selection import select_segmenter
    >>> train = load_horses("train")
    >>> result = select_segmenter(train.images, train.masks, search="quick", budget="10m")  # doctest: +SKIP
    >>> result.best_params_  # doctest: +SKIP
    {'clf__standardize': True, 'features__steps': (50, 150, 250)}
    >>> labels = result.segmenter_.predict(new_images)  # doctest: +SKIP
    """
    from ..backbone import load_backbone

    started = time.perf_counter()
    images, masks = list(images), list(masks)
    if len(images) != len(masks):
        raise ValueError(f"select_segmenter got {len(images)} images and {len(masks)} masks; give one mask per image.")
    seconds = parse_budget(budget)
    space = resolve_search(search)
    # an int is a number of GroupKFold folds; an iterable of (train, test) splits is wrapped by check_cv
    cv = default_cv(len(images)) if cv is None else (GroupKFold(n_splits=int(cv)) if isinstance(cv, int) else check_cv(cv))
    groups = np.arange(len(images)) if groups is None else np.asarray(groups)
    if len(groups) != len(images):
        raise ValueError(f"groups has {len(groups)} entries for {len(images)} images.")

    backbone = load_backbone(model)  # loaded once: every candidate's clone shares it
    user_memory = segmenter_params.pop("memory", None)
    user_batch_size = segmenter_params.get("batch_size")
    pipeline_params = {k: segmenter_params.pop(k) for k in list(segmenter_params) if "__" in k}
    base = make_segmenter(backbone, random_state=random_state, progress=False, **segmenter_params)
    base.set_params(**pipeline_params)
    # Images one at a time: a pass's activations depend on its size, so only single-image passes
    # give the same cache keys in every fold (the UNet then runs once per image and step).
    base.set_params(features__memory=user_memory if user_memory is not None else ActivationCache(CACHE_BYTES),
                    features__batch_size=user_batch_size if user_batch_size is not None else 1)
    start = {name: value for name, value in space["start"].items()
             if name not in pipeline_params and name.split("__", 1)[-1] not in segmenter_params}
    base.set_params(**_resolve_blocks(start, backbone))
    # An explicit keyword fixes its setting: the stages do not vary it.
    fixed = [name for stage in space["stages"] if not callable(stage)
             for grid in (stage if isinstance(stage, (list, tuple)) else [stage])
             for name in grid if name in pipeline_params or name.split("__", 1)[-1] in segmenter_params]
    if base.get_params()["features__tile"] is None:
        fixed.append("features__scale")  # scale is image pixels per model pixel of a tile: nothing to vary untiled
    stages = [_resolve_stage(stage, backbone, fixed) for stage in space["stages"]]
    proxy = _resolve_blocks(space["proxy"], backbone)
    # Candidates that differ only in prediction-time parameters (refinement, voting, flip
    # averaging) share each fold's fit: same scores, one fit.
    memo = _FitMemo()
    searched = _FitSharing(clone(base).set_params(**proxy), memo=memo)

    n_splits = cv.get_n_splits(images, masks, groups)
    train_fraction = (n_splits - 1) / n_splits if isinstance(cv, GroupKFold) else 0.75
    final_members = base.get_params()["clf__n_estimators"]
    members_factor = final_members / proxy.get("clf__n_estimators", final_members)

    def reserve(fold_fit_seconds):
        # The refit trains the final members on every image: fit time grows with both.
        return fold_fit_seconds * members_factor / train_fraction

    search_started = time.perf_counter()
    searcher = _StagedSearchCV(searched, stages, scoring=scoring, cv=cv, n_jobs=n_jobs, progress=progress,
                               budget=None if seconds is None else max(0.0, seconds - (search_started - started)),
                               reserve=reserve if refit else None, required_stages=space["required_stages"])
    searcher.fit(images, masks, groups=groups)
    search_seconds = time.perf_counter() - search_started

    table = _table(searcher, n_splits)
    best = int(np.nanargmax(np.asarray(table["mean_test_score"], dtype=float)))
    # The settings chosen: the search space's start (which every candidate had) and the best candidate's.
    best_params = {**start, **searcher.cv_results_["params"][best]}

    refit_started = time.perf_counter()
    segmenter = None
    if refit:
        segmenter = clone(base).set_params(**best_params).fit(images, masks)
        # The fitted segmenter predicts in the caller's batches and keeps no cache of the training images.
        segmenter.set_params(features__memory=user_memory,
                             features__batch_size=user_batch_size if user_batch_size is not None else "auto")
    refit_seconds = time.perf_counter() - refit_started
    return SelectionResult(
        segmenter_=segmenter, best_params_=best_params, best_score_=float(table["mean_test_score"][best]),
        cv_results_=table, skipped_=searcher.skipped_, stopped_by_budget_=searcher.stopped_by_budget_,
        search_=searcher, search_space_={"name": search if isinstance(search, str) else None, **space}, budget_=seconds, n_splits_=n_splits, n_images_=len(images), proxy_=proxy, start_=start,
        scoring_="miou (the pipeline's score)" if scoring is None else repr(scoring),
        seconds_={"search": search_seconds, "refit": refit_seconds, "total": time.perf_counter() - started},
        fits_={"fitted": memo.fits, "reused": memo.reused} if n_jobs in (None, 1) else None,
    )


def _resolve_blocks(params, backbone):
    """``features__blocks="all"`` as the backbone's every decoder block."""
    value = params.get("features__blocks")
    if isinstance(value, str) and value == ALL_BLOCKS:
        return {**params, "features__blocks": tuple(range(backbone.n_decoder_blocks))}
    return dict(params)


def _resolve_stage(stage, backbone, fixed=()):
    """A stage's grids with ``"all"`` blocks resolved and the ``fixed`` parameters left out.

    A callable stage is resolved likewise once it has returned its grids.
    """
    if callable(stage):
        return functools.partial(_resolve_called_stage, stage, backbone, tuple(fixed))
    grids = stage if isinstance(stage, (list, tuple)) else [stage]
    out = []
    for grid in grids:
        grid = {name: values for name, values in grid.items() if name not in fixed}
        if "features__blocks" in grid:
            grid["features__blocks"] = [_resolve_blocks({"features__blocks": v}, backbone)["features__blocks"]
                                        for v in grid["features__blocks"]]
        out.append(grid)
    return out


def _resolve_called_stage(stage, backbone, fixed, history):
    grids = stage(history)
    return _resolve_stage(grids, backbone, fixed) if grids else []


def _table(searcher, n_splits):
    """The CV table: one row per candidate, in the order they ran."""
    results = searcher.cv_results_
    splits = np.array([results[f"split{k}_test_score"] for k in range(n_splits)], dtype=float)
    return {
        "stage": list(searcher.stage_of_candidate_),
        "params": [dict(p) for p in results["params"]],
        "mean_test_score": [float(v) for v in results["mean_test_score"]],
        "fold_std_test_score": [float(v) for v in splits.std(axis=0, ddof=1)] if n_splits > 1 else
                               [None] * splits.shape[1],
        **{f"split{k}_test_score": [float(v) for v in splits[k]] for k in range(n_splits)},
        "mean_fit_time": [float(v) for v in results["mean_fit_time"]],
        "mean_score_time": [float(v) for v in results["mean_score_time"]],
        "seconds": list(searcher.candidate_seconds_),
        "rank_test_score": [int(v) for v in results["rank_test_score"]],
    }
