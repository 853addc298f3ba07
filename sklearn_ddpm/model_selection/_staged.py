"""A scikit-learn search that runs stages of grids in order and stops at a time budget.

:class:`~sklearn.model_selection.GridSearchCV` runs one grid to the end. The segmenter's settings
are searched in stages instead (features first, then one lever at a time from the best so far),
and on a CPU the whole grid may not fit the time a user can wait. ``_StagedSearchCV`` is a
:class:`~sklearn.model_selection._search.BaseSearchCV` whose ``_run_search`` (the extension point
scikit-learn's own searches override) evaluates one candidate at a time, so that fitting, scoring,
parallel folds, ``cv_results_`` and error handling stay scikit-learn's.
"""

import numbers
import time

import numpy as np
from sklearn.model_selection import ParameterGrid
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils._param_validation import Interval
from tqdm.auto import tqdm


def _normalized(value):
    """A hashable, comparable stand-in for a parameter value (estimators by their repr)."""
    if isinstance(value, (list, tuple)):
        return tuple(_normalized(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, (str, int, float, bool, type(None), np.generic)):
        return value
    return repr(value)  # estimators: scikit-learn's repr lists the parameters that differ from defaults


def _format_seconds(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class _StagedSearchCV(BaseSearchCV):
    """Cross-validate the candidates of ``stages`` in order, each stage from the best so far.

    Parameters
    ----------
    estimator : estimator
        The pipeline every candidate is cloned from.
    stages : list of param_grid or callable
        Each stage's candidates are the best parameters before the stage updated with one point
        of ``ParameterGrid(stage)`` (the best is not updated within a stage, so the points of a
        stage are alternatives to each other, each from the same start). A callable stage is
        called with the candidates run so far (a dict of lists: ``stage``, ``params``,
        ``mean_test_score``) when its turn comes, and returns the stage's ``param_grid`` (an
        empty list: nothing to run), for a stage that depends on the earlier results.
        Candidates equal to one already evaluated (parameters equal to the estimator's own count
        as unset) are not run again.
    budget : float or None, default=None
        Seconds. No candidate starts when the time spent plus its expected time (the mean wall
        time of the candidates so far; with an estimator that shares fits between candidates,
        such as ``_FitSharing``, the mean of those that fitted, or of those that reused a fit
        when this one will) plus ``reserve(best_fit_seconds)`` would exceed it; the first
        candidate always runs. None: no limit.
    required_stages : int, default=0
        The first stages run in full whatever the budget (the budget applies from the next
        stage on).
    reserve : callable or None, default=None
        Seconds to keep for after the search, given the best candidate's mean fit time per fold.
    progress : bool, default=False
        A progress bar over candidates, with the best score and the budget left.
    scoring, n_jobs, cv, verbose, pre_dispatch, error_score, return_train_score
        As :class:`~sklearn.model_selection.GridSearchCV`. ``refit`` is False: the caller refits.

    Attributes
    ----------
    cv_results_ : dict
        scikit-learn's table of the evaluated candidates.
    stage_of_candidate_ : list of int
        The stage (0-based) of each row of ``cv_results_``.
    candidate_seconds_ : list of float
        Wall time of each candidate (all its folds).
    candidate_reused_fits_ : list of bool
        Whether each candidate was scored on earlier fits (an estimator with ``reuses_fits_of``).
    skipped_ : list of dict
        Candidates not run because of the budget, with their stage.
    stopped_by_budget_ : bool
    """

    _parameter_constraints = {
        **BaseSearchCV._parameter_constraints,
        "stages": [list],
        "budget": [None, Interval(numbers.Real, 0, None, closed="left")],
        "reserve": [None, callable],
        "required_stages": [Interval(numbers.Integral, 0, None, closed="left")],
        "progress": ["boolean"],
    }

    def __init__(self, estimator, stages, *, scoring=None, n_jobs=None, cv=None, verbose=0,
                 pre_dispatch="2*n_jobs", error_score="raise", return_train_score=False, budget=None,
                 reserve=None, required_stages=0, progress=False):
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=False, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, error_score=error_score, return_train_score=return_train_score)
        self.stages = stages
        self.budget = budget
        self.reserve = reserve
        self.required_stages = required_stages
        self.progress = progress

    def _key(self, params, defaults):
        return tuple(sorted((name, _normalized(value)) for name, value in params.items()
                            if name not in defaults or _normalized(value) != _normalized(defaults[name])))

    def _run_search(self, evaluate_candidates):
        start = time.perf_counter()
        defaults = self.estimator.get_params()
        self.stage_of_candidate_, self.candidate_seconds_, self.skipped_ = [], [], []
        self.candidate_reused_fits_ = []
        reuses = getattr(self.estimator, "reuses_fits_of", lambda params: False)
        self.stopped_by_budget_ = False
        seen, best, results = set(), {}, None
        # a callable stage's candidates are known only when its turn comes: the bar grows then
        bar = tqdm(total=sum(len(ParameterGrid(s)) for s in self.stages if not callable(s)), desc="select",
                   unit="candidate", disable=not self.progress, dynamic_ncols=True)
        try:
            for stage, grid in enumerate(self.stages):
                if callable(grid):
                    grid = ParameterGrid(grid(self._history(results)))
                    bar.total += len(grid)
                else:
                    grid = ParameterGrid(grid)
                start_of_stage = dict(best)  # every point of a stage starts from the same best
                for point in grid:
                    params = {**start_of_stage, **point}
                    key = self._key(params, defaults)
                    if key in seen:
                        bar.total -= 1  # already cross-validated (e.g. a stage's value that is the best so far)
                        bar.refresh()
                        continue
                    reused = reuses(params)
                    if stage >= self.required_stages and (self.stopped_by_budget_
                                                          or not self._fits_budget(start, results, reused)):
                        self.stopped_by_budget_ = True
                        self.skipped_.append({"stage": stage, "params": params})
                        continue
                    seen.add(key)
                    began = time.perf_counter()
                    self.candidate_reused_fits_.append(reused)
                    results = evaluate_candidates([params])
                    self.candidate_seconds_.append(time.perf_counter() - began)
                    self.stage_of_candidate_.append(stage)
                    scores = np.asarray(results["mean_test_score"], dtype=float)
                    best = dict(results["params"][int(np.nanargmax(scores))])
                    keep = getattr(self.estimator, "keep_fits_of", None)
                    if keep is not None:  # the next stage starts from the best: its fits may serve again
                        keep(best)
                    bar.update(1)
                    postfix = {"best": f"{np.nanmax(scores):.4f}"}
                    if self.budget is not None:
                        postfix["budget left"] = _format_seconds(self.budget - (time.perf_counter() - start))
                    bar.set_postfix(postfix, refresh=True)
            if self.stopped_by_budget_:
                bar.set_description(f"select (budget reached, {len(self.skipped_)} candidates skipped)")
        finally:
            bar.close()

    def _history(self, results):
        """The candidates run so far, for a callable stage."""
        if results is None:
            return {"stage": [], "params": [], "mean_test_score": []}
        return {"stage": list(self.stage_of_candidate_), "params": [dict(p) for p in results["params"]],
                "mean_test_score": [float(v) for v in results["mean_test_score"]]}

    def _fits_budget(self, start, results, reuses_fits=False):
        if self.budget is None or results is None:
            return True  # the first candidate always runs: a search must return something
        # a candidate scored on earlier fits costs its predictions only: like the others that did
        alike = [s for s, r in zip(self.candidate_seconds_, self.candidate_reused_fits_) if r == reuses_fits]
        if alike:
            expected = float(np.mean(alike))
        elif reuses_fits:  # the first such candidate: the scoring time of the others
            n_splits = sum(1 for name in results if name.startswith("split") and name.endswith("_test_score"))
            expected = float(np.mean(results["mean_score_time"])) * n_splits
        else:
            expected = float(np.mean(self.candidate_seconds_))
        best = int(np.nanargmax(np.asarray(results["mean_test_score"], dtype=float)))
        reserve = self.reserve(float(results["mean_fit_time"][best])) if self.reserve is not None else 0.0
        return time.perf_counter() - start + expected + reserve <= self.budget
