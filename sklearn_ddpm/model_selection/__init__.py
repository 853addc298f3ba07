"""Choosing the segmenter's settings by cross-validation on the user's labelled images.

:func:`select_segmenter` cross-validates the candidates of a search space (a preset of
:data:`SEARCH_PRESETS` or the caller's grids) with folds of whole images, one shared activation
cache and a time budget, then refits the best settings on every labelled image. The command line's
``sklearn-ddpm fit --select`` and the benchmarks that choose settings call it. User guide:
``docs/model_selection.md``.

Modules: ``_presets`` (the search spaces), ``_staged`` (the scikit-learn search that runs them
within a budget), ``_select`` (the function and its result), ``_budget`` (durations).
"""

from ._budget import parse_budget
from ._presets import ALL_BLOCKS, SEARCH_PRESETS, resolve_search
from ._select import CACHE_BYTES, SelectionResult, default_cv, select_segmenter

__all__ = ["ALL_BLOCKS", "CACHE_BYTES", "SEARCH_PRESETS", "SelectionResult", "default_cv", "parse_budget",
           "resolve_search", "select_segmenter"]
