"""Recording library versions in pickled estimators and warning when they differ at load time.

Like scikit-learn's own ``InconsistentVersionWarning``: a model saved with other versions of
sklearn-ddpm, torch or diffusers usually still loads, but may not predict the same.
"""

import warnings


class VersionMismatchWarning(UserWarning):
    """A pickled estimator was saved with other package versions than the ones installed."""


def current_versions():
    import diffusers
    import sklearn
    import skorch
    import torch

    from .. import __version__

    return {"sklearn-ddpm": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "scikit-learn": sklearn.__version__, "skorch": skorch.__version__}


class VersionedPickleMixin:
    """Adds ``_sklearn_ddpm_versions`` to the pickled state and checks it on load."""

    def __getstate__(self):
        state = super().__getstate__()
        state["_sklearn_ddpm_versions"] = current_versions()
        return state

    def __setstate__(self, state):
        saved = state.pop("_sklearn_ddpm_versions", None)
        if saved is not None:
            now = current_versions()
            changed = {k: (v, now.get(k)) for k, v in saved.items() if now.get(k) != v}
            if changed:
                details = ", ".join(f"{k} {old} (now {new})" for k, (old, new) in changed.items())
                warnings.warn(
                    f"{type(self).__name__} was saved with {details}; predictions may differ. "
                    "Refit or use the versions it was saved with.",
                    VersionMismatchWarning,
                )
        super().__setstate__(state)
