"""Recording library versions in pickled estimators and warning when they differ at load time.

Like scikit-learn's own ``InconsistentVersionWarning``: a model saved with other versions of
sklearn-ddpm, torch or diffusers usually still loads, but may not predict the same.

This module is the only place that compares versions. Each estimator records them when it is
pickled and warns when it is unpickled on its own; a loader of a whole file (a pipeline holds two
estimators) collects the estimators' findings with :func:`collect_version_changes` and warns once
for the file.
"""

import contextlib
import threading
import warnings


class VersionMismatchWarning(UserWarning):
    """A pickled estimator was saved with other package versions than the ones installed."""


def current_versions():
    """The installed versions of the packages a fitted model depends on, by package name."""
    import diffusers
    import sklearn
    import skorch
    import torch

    from .. import __version__

    return {"sklearn-ddpm": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "scikit-learn": sklearn.__version__, "skorch": skorch.__version__}


def version_changes(saved):
    """``{package: (saved version, installed version)}`` for every package whose version differs.

    Parameters
    ----------
    saved : dict of str to str
        Versions recorded at saving time, e.g. by :func:`current_versions`.

    Returns
    -------
    dict
        Empty when every recorded version is the installed one.
    """
    now = current_versions()
    return {name: (version, now.get(name)) for name, version in saved.items() if now.get(name) != version}


def warn_version_changes(changes, what, stacklevel=2):
    """Emit one :class:`VersionMismatchWarning` saying that ``what`` was saved with ``changes``."""
    details = ", ".join(f"{name} {old} (now {new})" for name, (old, new) in changes.items())
    warnings.warn(f"{what} was saved with {details}; predictions may differ. "
                  "Refit or use the versions it was saved with.", VersionMismatchWarning, stacklevel=stacklevel + 1)


# Per thread, so that a load in one thread never swallows the warnings of a load in another.
_collector = threading.local()


@contextlib.contextmanager
def collect_version_changes():
    """Collect the estimators' version mismatches while unpickling, instead of warning for each.

    Yields
    ------
    dict
        Filled, when the block ends, with the changes of every estimator unpickled inside it;
        warn about them once with :func:`warn_version_changes`.

    Examples
    --------
    >>> import joblib  # doctest: +SKIP
    >>> with collect_version_changes() as changes:  # doctest: +SKIP
    ...     model = joblib.load("seg.joblib")
    >>> if changes:  # doctest: +SKIP
    ...     warn_version_changes(changes, "seg.joblib")
    """
    previous = getattr(_collector, "changes", None)
    _collector.changes = changes = {}
    try:
        yield changes
    finally:
        _collector.changes = previous


class VersionedPickleMixin:
    """Adds ``_sklearn_ddpm_versions`` to the pickled state and checks it on load."""

    def __getstate__(self):
        state = super().__getstate__()
        state["_sklearn_ddpm_versions"] = current_versions()
        return state

    def __setstate__(self, state):
        saved = state.pop("_sklearn_ddpm_versions", None)
        changes = version_changes(saved) if saved is not None else {}
        if changes:
            collected = getattr(_collector, "changes", None)
            if collected is not None:
                collected.update(changes)
            else:
                warn_version_changes(changes, type(self).__name__)
        super().__setstate__(state)
