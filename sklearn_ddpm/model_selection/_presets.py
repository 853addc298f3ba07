"""Named search spaces of :func:`~sklearn_ddpm.model_selection.select_segmenter`.

A search space is a dict with four entries, all optional but ``"stages"``:

``"start"``
    Pipeline parameters every candidate starts from (they are cross-validated like the rest, and
    refitted when no stage replaced them). A parameter the caller sets explicitly (a keyword of
    :func:`~sklearn_ddpm.model_selection.select_segmenter`) wins over ``"start"``.
``"proxy"``
    Cheaper settings used only while cross-validating, replaced by the segmenter's own at the
    refit (the default presets cross-validate 3 MLPs per ensemble and refit 10, because an ensemble's
    training time grows with its members; that 3 members rank candidates as 10 do is an assumption
    no record measures).
``"stages"``
    A list of scikit-learn ``param_grid`` s (a dict of lists, or a list of such dicts). The stages
    run in order; each stage's candidates are the best candidate before the stage with one point
    of its grid applied, so every stage varies its parameters with the others at their best values
    so far (greedy coordinate search), and the points of one stage are alternatives from the same
    start (a list of grids with different parameters changes one at a time). A candidate already
    cross-validated is not run again. A stage may also be a callable: called with the candidates
    run so far (a dict of lists ``stage``, ``params``, ``mean_test_score``), it returns the
    stage's ``param_grid`` (an empty list: nothing to run), e.g. the changes of an earlier stage
    that beat its start, combined (``benchmarks/ccp_cv_protocol.py``).
``"required_stages"``
    How many of the first stages run in full whatever the budget (default 0: only the first
    candidate always runs); the budget stops candidates from the next stage on.

Parameter names are the pipeline's (``features__*``, ``clf__*``, see
:func:`~sklearn_ddpm.make_segmenter`); ``features__blocks`` also takes ``"all"`` (every decoder
block of the backbone), resolved by :func:`select_segmenter` once the backbone is loaded. A stage
that varies ``features__scale`` (image pixels per model pixel) applies only when the transformer
tiles (``tile=``, ``fit --tile``): without tiles :func:`select_segmenter` drops it, as it drops a
setting the caller fixed.

The presets (stages in order; the value first listed is the segmenter's default or the start):

``"quick"`` (4 candidates)
    standardize {False, True}; steps {(50, 150, 250), (10, 50, 150)}; refinement {guided, vote}.
``"default"`` (8 candidates; 10 with tiles)
    standardize {False, True}; blocks {"auto", "all"}; steps {(50, 150, 250), (10, 50, 150)};
    with tiles, scale {1, 2, 4}; refinement {guided, vote}; pixels per image {1000, 4000}; class balancing {none, "balanced"
    loss weights}; noise draws averaged {1, 4}.
``"full"`` (27 candidates; 29 with tiles)
    blocks {"auto", "all"} x steps {(50, 150, 250), (10, 50, 150), (50,), (10, 50, 150, 250, 500)}
    x standardize {False, True} (every combination); with tiles, scale {1, 2, 4}; refinement {guided, radius 8, eps 1e-2,
    vote}; pixels per image {1000, 4000, 16000}; class balancing {none, "balanced" loss weights,
    at most 250 pixels per class and image, both}; noise draws {1, 4, 8}; the members' hidden
    sizes {"auto", (256, 128)}.

``"default"`` changes one lever per stage, in the order of the levers' value on the project's
data: standardization first (it decides whether many blocks can help: unstandardized, the
largest block dominates), then blocks, steps, refinement, pixels, class balancing, noise. Under
a time budget every stage it reaches has tried a different lever. ``"full"`` crosses the feature
settings first, as the staged protocol of ``benchmarks/ccp_cv_protocol.py`` did.
"""

from ..postprocessing import GuidedFilter

#: ``features__blocks="all"``: every decoder block of the backbone.
ALL_BLOCKS = "all"

_PAPER_STEPS = (50, 150, 250)
_EARLY_STEPS = (10, 50, 150)
#: Image pixels per model pixel; only with tiles (select_segmenter drops the stage otherwise).
_SCALE_STAGE = {"features__scale": [1.0, 2.0, 4.0]}

SEARCH_PRESETS = {
    "quick": {
        "start": {"clf__max_pixels_per_image": 1000, "clf__refine": GuidedFilter()},
        "proxy": {"clf__n_estimators": 3},
        "stages": [
            {"clf__standardize": [False, True]},
            {"features__steps": [_PAPER_STEPS, _EARLY_STEPS]},
            {"clf__refine": [GuidedFilter(), None]},
        ],
    },
    "default": {
        "start": {"clf__max_pixels_per_image": 1000, "clf__refine": GuidedFilter()},
        "proxy": {"clf__n_estimators": 3},
        "stages": [
            {"clf__standardize": [False, True]},
            {"features__blocks": ["auto", ALL_BLOCKS]},
            {"features__steps": [_PAPER_STEPS, _EARLY_STEPS]},
            _SCALE_STAGE,
            {"clf__refine": [GuidedFilter(), None]},
            {"clf__max_pixels_per_image": [1000, 4000]},
            {"clf__class_weight": [None, "balanced"]},
            {"features__n_noise_samples": [1, 4]},
        ],
    },
    "full": {
        "start": {"clf__max_pixels_per_image": 1000, "clf__refine": GuidedFilter()},
        "proxy": {"clf__n_estimators": 3},
        "stages": [
            {"features__blocks": ["auto", ALL_BLOCKS],
             "features__steps": [_PAPER_STEPS, _EARLY_STEPS, (50,), (10, 50, 150, 250, 500)],
             "clf__standardize": [False, True]},
            _SCALE_STAGE,
            {"clf__refine": [GuidedFilter(), GuidedFilter(radius=8), GuidedFilter(eps=1e-2), None]},
            {"clf__max_pixels_per_image": [1000, 4000, 16000]},
            [{"clf__class_weight": [None, "balanced"], "clf__max_pixels_per_class": [None, 250]}],
            {"features__n_noise_samples": [1, 4, 8]},
            {"clf__hidden_layer_sizes": ["auto", (256, 128)]},
        ],
    },
}


def resolve_search(search):
    """A search space as a dict with ``"start"``, ``"proxy"``, ``"stages"`` and ``"required_stages"`` (copied).

    ``search`` is a name of :data:`SEARCH_PRESETS`; a dict with a ``"stages"`` entry (a whole
    search space, see the module's docstring); a ``param_grid`` dict (one stage: every combination, as ``GridSearchCV``); or
    a list of stages.

    Examples
    --------
    >>> from sklearn_ddpm.model_selection import resolve_search
    >>> resolve_search({"clf__standardize": [False, True]})
    {'start': {}, 'proxy': {}, 'stages': [{'clf__standardize': [False, True]}], 'required_stages': 0}
    >>> len(resolve_search("default")["stages"])
    8
    """
    if isinstance(search, str):
        if search not in SEARCH_PRESETS:
            raise ValueError(f"search={search!r} is not a preset; choose from {sorted(SEARCH_PRESETS)} "
                             "or pass a param_grid dict or a list of stages.")
        search = SEARCH_PRESETS[search]
    if isinstance(search, dict) and "stages" in search:
        unknown = set(search) - {"start", "proxy", "stages", "required_stages"}
        if unknown:
            raise ValueError(f"search has unknown entries {sorted(unknown)}; a search space has 'start', 'proxy', "
                             "'stages' and 'required_stages'.")
        space = {"start": dict(search.get("start", {})), "proxy": dict(search.get("proxy", {})),
                 "stages": list(search["stages"]), "required_stages": int(search.get("required_stages", 0))}
    elif isinstance(search, dict):
        space = {"start": {}, "proxy": {}, "stages": [search], "required_stages": 0}
    elif isinstance(search, (list, tuple)):
        space = {"start": {}, "proxy": {}, "stages": list(search), "required_stages": 0}
    else:
        raise TypeError(f"search must be a preset name, a param_grid dict or a list of stages, got {search!r}.")
    if not space["stages"]:
        raise ValueError("search has no stages: give at least one param_grid.")
    if not 0 <= space["required_stages"] <= len(space["stages"]):
        raise ValueError(f"required_stages={space['required_stages']} must be between 0 and the number of stages "
                         f"({len(space['stages'])}).")
    for stage in space["stages"]:
        if callable(stage):
            continue  # its grids are known only when it runs
        for grid in stage if isinstance(stage, (list, tuple)) else [stage]:
            if not isinstance(grid, dict):
                raise TypeError(f"a search stage must be a param_grid dict or a list of them, got {grid!r}.")
            for name, values in grid.items():
                if "__" not in name:
                    raise ValueError(f"search parameter {name!r} is not a pipeline parameter; use "
                                     "'features__<name>' or 'clf__<name>'.")
                if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
                    raise ValueError(f"search parameter {name!r} needs a non-empty list of values, got {values!r}.")
    return space
