"""Which classes and functions a safe model file may name, and how each is rebuilt.

A safe model file (:mod:`sklearn_ddpm.io`) names classes by ``module:qualname``. Loading resolves
such a name only when the module belongs to a trusted family below, and then uses the object
only if it passes :func:`trusted_kind`. Nothing else is imported, called or constructed, so the
file's author cannot make the loader run code of their choosing: the loader runs this package's
own constructors (which only store their arguments, the scikit-learn convention) and
``__setstate__`` methods, and PyTorch's ``load_state_dict``.

The policy is by family, not by a list of today's parameters, so a new estimator parameter or
fitted attribute needs no change here; a parameter whose *value* is of a new kind of class does
(saving then fails, naming the value and this module).
"""

import importlib

#: Modules whose members may be resolved at all (their import is side-effect free).
TRUSTED_MODULE_PREFIXES = ("sklearn_ddpm.", "sklearn.pipeline", "skorch.", "torch.optim.", "torch.nn.modules.loss",
                           "torch.utils.data.")

#: Functions that may appear as parameter values (e.g. a DataLoader's ``collate_fn``).
TRUSTED_FUNCTIONS = frozenset({
    "sklearn_ddpm.ensemble._net:collate_identity",
})

#: skorch's own callbacks that may appear in a net's ``callbacks`` (a progress bar is harmless;
#: callbacks that write files, such as ``Checkpoint``, are left out on purpose).
TRUSTED_SKORCH_CALLBACKS = frozenset({"skorch.callbacks.logging:ProgressBar"})

#: Classes used as parameter values only (skorch instantiates them with the net's parameters).
TRUSTED_VALUE_CLASSES = frozenset({
    "torch.utils.data.dataloader:DataLoader",
    "skorch.dataset:Dataset",
})


def qualified_name(obj):
    """``module:qualname`` of a class or function."""
    return f"{obj.__module__}:{obj.__qualname__}"


def public_name(obj):
    """The shortest ``package:name`` under which this package exports ``obj`` (else its own name).

    Files name classes by their public home (``sklearn_ddpm.ensemble:MLPEnsembleClassifier``),
    so that moving a class between private modules does not break files written before.
    """
    module = obj.__module__
    if module.startswith("sklearn_ddpm.") and "." not in obj.__qualname__:
        parts = module.split(".")
        for depth in range(1, len(parts)):
            package = importlib.import_module(".".join(parts[:depth]))
            if getattr(package, obj.__qualname__, None) is obj:
                return f"{package.__name__}:{obj.__qualname__}"
    return qualified_name(obj)


def trusted_kind(obj):
    """How a class or function may be used when a file names it; None if it may not.

    Returns
    -------
    {"estimator", "net", "state", "value"} or None
        "estimator": constructed from its parameters, then ``__setstate__`` (scikit-learn
        estimators of this package, sklearn's ``Pipeline``, skorch callbacks); "net": a skorch
        net, rebuilt by ``initialize`` and its networks' ``load_state_dict``; "state": a
        :class:`~sklearn_ddpm.Backbone`, rebuilt by its ``__setstate__`` from plain data; "value":
        used only as a parameter value (an optimizer, loss or network class, a function).
    """
    import torch
    from sklearn.base import BaseEstimator
    from skorch import NeuralNet
    from skorch.callbacks import Callback

    from ..backbone import Backbone

    name = qualified_name(obj) if hasattr(obj, "__qualname__") and hasattr(obj, "__module__") else None
    if name is None:
        return None
    ours = obj.__module__ == "sklearn_ddpm" or obj.__module__.startswith("sklearn_ddpm.")
    if not isinstance(obj, type):
        return "value" if name in TRUSTED_FUNCTIONS else None
    if ours:
        if issubclass(obj, Backbone):
            return "state"
        if issubclass(obj, NeuralNet):
            return "net"
        if issubclass(obj, (BaseEstimator, Callback)):
            return "estimator"
        if issubclass(obj, (torch.nn.Module, torch.utils.data.Dataset)):
            return "value"
        return None
    if name == "sklearn.pipeline:Pipeline":
        return "estimator"
    if obj.__module__.startswith("skorch.") or obj.__module__ == "skorch":
        if issubclass(obj, NeuralNet):
            return "net"
        if name in TRUSTED_SKORCH_CALLBACKS:
            return "estimator"
    if obj.__module__.startswith("torch.optim.") and issubclass(obj, torch.optim.Optimizer):
        return "value"
    if obj.__module__ == "torch.nn.modules.loss" and issubclass(obj, torch.nn.Module):
        return "value"
    if name in TRUSTED_VALUE_CLASSES:
        return "value"
    return None


def resolve(name):
    """The class or function a file names.

    Only modules of :data:`TRUSTED_MODULE_PREFIXES` are imported, and only plain attribute names
    (no dunders, no nested ``<locals>``) are looked up.

    Raises
    ------
    PermissionError
        The name is outside the trusted families (the file may be crafted).
    LookupError
        A trusted module lacks the name (a file from another version of the package).
    """
    module_name, _, qualname = name.partition(":")
    parts = qualname.split(".")
    if (not qualname or not (module_name + ".").startswith(TRUSTED_MODULE_PREFIXES)
            or any(not part.isidentifier() or part.startswith("__") for part in parts)):
        raise PermissionError(f"{name!r} is not a trusted class or function")
    try:
        obj = importlib.import_module(module_name)
        for part in parts:
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise LookupError(f"{name!r} does not exist in the installed packages") from None
    if trusted_kind(obj) is None:
        raise PermissionError(f"{name!r} is not a trusted class or function")
    return obj
