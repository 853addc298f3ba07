"""Candidates that differ only in prediction-time parameters share one fit per fold.

A search clones and fits every candidate. Some parameters, though, are read only when the fitted
estimator predicts (the classifier's ``voting`` and ``refine``, the transformer's ``flip_tta``):
candidates that differ only in those would fit the same model again. An estimator declares such
parameters in a class attribute ``_prediction_params`` (names of its own parameters; everything
nested under one, e.g. ``refine__radius``, is prediction-time too). :class:`_FitSharing` wraps the
searched estimator: its ``fit`` looks the candidate's fit-time parameters and training data up in
a :class:`_FitMemo`, and on a hit takes a copy of the fitted estimator and ``set_params`` the
candidate's prediction-time parameters on it instead of fitting. The scores are those of separate
fits where a fit is a function of the parameters and the data (a seeded fit reproduces; with
``random_state=None`` the candidates share one draw); only the fitting is saved.

The memo lives in the process that fits: with ``n_jobs`` > 1 every job unpickles an empty one, so
the folds are fitted as before (correct, nothing shared).
"""

import copy
import types

import joblib
import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.validation import check_is_fitted


def is_prediction_param(estimator, name):
    """Whether the (nested) parameter ``name`` of ``estimator`` is read only at prediction.

    True when an estimator on the path of ``name`` lists the next part of the name in its
    ``_prediction_params``: ``clf__refine__radius`` is, because the ``clf`` step declares ``refine``.

    Examples
    --------
    >>> from sklearn_ddpm import make_segmenter
    >>> from sklearn_ddpm.model_selection._shared_fits import is_prediction_param
    >>> segmenter = make_segmenter()
    >>> [is_prediction_param(segmenter, n) for n in ("clf__refine__eps", "features__flip_tta", "clf__lr")]
    [True, True, False]
    """
    return name in _prediction_names(estimator)


def _prediction_names(estimator):
    """The names of ``estimator.get_params()`` that are prediction-time (see :func:`is_prediction_param`)."""
    params = estimator.get_params(deep=True)
    names = set()
    for name in params:
        parts = name.split("__")
        for k, part in enumerate(parts):
            owner = estimator if k == 0 else params.get("__".join(parts[:k]))
            if part in getattr(owner, "_prediction_params", ()):
                names.add(name)
                break
    return names


class _Identity:
    """A key part equal only to the same object (kept alive by the key, so its id is not reused)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def _key_value(value):
    """A hashable stand-in for a fit-time parameter value."""
    if isinstance(value, BaseEstimator):
        # its own parameters are in the deep parameters already; the class is what the name adds
        return ("estimator", type(value).__module__, type(value).__qualname__)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *(_key_value(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *sorted((repr(k), _key_value(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, joblib.hash(value))
    if isinstance(value, (str, bytes, int, float, bool, complex, type(None), np.generic)):
        return value
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return ("named", value.__module__, value.__qualname__)
    # Anything else (the shared backbone, the activation cache): the same object only. A clone
    # deep-copies such values unless they return themselves, so at worst a fit is not shared.
    return _Identity(value)


class _FitMemo:
    """Fitted estimators by fit key and training set; ``clone`` and ``deepcopy`` share it.

    Two fit keys are kept: the latest (a stage's alternatives run one after the other) and the one
    :meth:`pin` names (a staged search's best so far, from which the next stage's points start),
    so memory holds at most two fitted estimators per fold.
    """

    def __init__(self):
        self._fitted = {}  # fit key -> {training data hash -> fitted estimator}
        self._latest = self._pinned = None
        self.fits = 0
        self.reused = 0

    def __deepcopy__(self, memo):
        # clone() deep-copies parameters: every candidate's clone must see the same memo.
        return self

    def __reduce__(self):
        # a job in another process gets an empty memo (nothing shared there)
        return (_FitMemo, ())

    def get(self, key, data):
        return self._fitted.get(key, {}).get(data)

    def put(self, key, data, fitted):
        self._latest = key
        self._fitted.setdefault(key, {})[data] = fitted
        self._forget()

    def has(self, key):
        return bool(self._fitted.get(key))

    def pin(self, key):
        """Keep the fits of ``key`` (besides the latest) until another key is pinned."""
        self._pinned = key
        self._forget()

    def _forget(self):
        self._fitted = {k: v for k, v in self._fitted.items() if k in (self._latest, self._pinned)}


class _FitSharing(MetaEstimatorMixin, BaseEstimator):
    """``estimator``, with fits shared between candidates that differ only in prediction-time parameters.

    Transparent to a search: ``get_params`` and ``set_params`` are the estimator's (plus
    ``estimator`` and ``memo``), ``predict``, ``predict_proba`` and ``score`` those of the fitted
    estimator. See the module docstring.

    Parameters
    ----------
    estimator : estimator
    memo : _FitMemo or None, default=None
        Shared by the clones of this wrapper; None: nothing is shared.

    Attributes
    ----------
    estimator_ : the fitted estimator (a copy of a shared fit when ``reused_fit_``)
    reused_fit_ : bool
    """

    def __init__(self, estimator, memo=None):
        self.estimator = estimator
        self.memo = memo

    def get_params(self, deep=True):
        params = {"estimator": self.estimator, "memo": self.memo}
        if deep:
            params.update(self.estimator.get_params(deep=True))
        return params

    def set_params(self, **params):
        own = {name: params.pop(name) for name in ("estimator", "memo") if name in params}
        for name, value in own.items():
            setattr(self, name, value)
        if params:
            self.estimator.set_params(**params)
        return self

    def __sklearn_tags__(self):
        return self.estimator.__sklearn_tags__()

    def _split_params(self):
        """The estimator's fit-time parameters (as a key) and its top prediction-time ones (values)."""
        params = self.estimator.get_params(deep=True)
        prediction = _prediction_names(self.estimator)
        # nested ones (clf__refine__eps) come with their parent's value (clf__refine)
        top = {name: params[name] for name in prediction
               if not any(name.startswith(other + "__") for other in prediction)}
        key = tuple(sorted((name, _key_value(value)) for name, value in params.items() if name not in prediction))
        return key, top

    def reuses_fits_of(self, params):
        """Whether the estimator with ``params`` set would be scored on the memo's fits (of any training set)."""
        if self.memo is None:
            return False
        return self.memo.has(_FitSharing(clone(self.estimator).set_params(**params))._split_params()[0])

    def keep_fits_of(self, params):
        """Keep the memo's fits of the estimator with ``params`` set (a search's best so far)."""
        if self.memo is not None:
            self.memo.pin(_FitSharing(clone(self.estimator).set_params(**params))._split_params()[0])

    def fit(self, X, y=None, **fit_params):
        """Fit the estimator, or reuse the memo's fit of the same fit-time parameters and data."""
        if self.memo is None or fit_params:
            self.estimator_, self.reused_fit_ = self.estimator.fit(X, y, **fit_params), False
            return self
        key, prediction = self._split_params()
        data = joblib.hash((X, y))
        fitted = self.memo.get(key, data)
        if fitted is None:
            self.estimator_, self.reused_fit_ = self.estimator.fit(X, y), False
            self.memo.put(key, data, self.estimator_)
            self.memo.fits += 1
        else:
            # A copy: the memo's estimator stays as fitted (the backbone and the activation cache
            # return themselves from deepcopy, so only the fitted weights are copied).
            self.estimator_, self.reused_fit_ = copy.deepcopy(fitted).set_params(**prediction), True
            self.memo.reused += 1
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def score(self, X, y=None, **params):
        check_is_fitted(self)
        return self.estimator_.score(X, y, **params)
