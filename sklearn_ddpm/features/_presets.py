"""Named feature settings (``DDPMFeatureTransformer`` parameters) to compare in one grid search.

- ``"paper"``: Baranchuk et al. (2022): several decoder blocks ("auto": the paper's
  ``(5, 6, 7, 8, 12)`` on an 18-block ADM, the same relative depths elsewhere) at steps 50, 150,
  250, one noise draw.
- ``"dift"``: DIFT (Tang et al., 2023, "Emergent Correspondence from Image Diffusion"): one
  up-block, one timestep, activations averaged over 8 noise draws (their ``ensemble_size``). Block
  5 is the output of ``up_blocks[1]`` of a Stable Diffusion 1.x/2.x UNet (their
  ``up_ft_index=1``: 1280 channels at 1/16 of the image), step 261 their timestep, the prompt
  empty (the transformer's default).

The block numbers of ``"dift"`` are those of the SD layout (docs/latent_backbones.md); on other
UNets see ``sklearn-ddpm blocks`` and override ``blocks``.
"""

from ._transformer import PAPER_STEPS

FEATURE_PRESETS = {
    "paper": {"blocks": "auto", "steps": PAPER_STEPS, "n_noise_samples": 1},
    "dift": {"blocks": (5,), "steps": (261,), "n_noise_samples": 8},
}


def preset_grid(*names, prefix="features__"):
    """A ``GridSearchCV`` ``param_grid`` (list of dicts) with one candidate per named preset.

    Parameters
    ----------
    *names : str
        Keys of :data:`FEATURE_PRESETS`; all of them when none is given.
    prefix : str, default="features__"
        The transformer's step name in the pipeline plus ``"__"`` (``""`` for a bare transformer).

    Returns
    -------
    list of dict

    Examples
    --------
    >>> from sklearn_ddpm.features import preset_grid
    >>> preset_grid("dift")
    [{'features__blocks': [(5,)], 'features__steps': [(261,)], 'features__n_noise_samples': [8]}]
    """
    unknown = [name for name in names if name not in FEATURE_PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; choose from {sorted(FEATURE_PRESETS)}.")
    return [{prefix + key: [value] for key, value in FEATURE_PRESETS[name].items()} for name in names or FEATURE_PRESETS]
