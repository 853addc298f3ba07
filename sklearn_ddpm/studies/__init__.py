"""The paper's analyses as one-call tools, each returning a pandas table and drawing a figure.

- :func:`block_step_sweep` / :func:`plot_block_step_heatmap`: which decoder block at which step
  carries the semantics (Figs. 2 and 3, with :func:`class_size_groups`);
- :func:`discover_parts` / :func:`plot_parts`: k-means parts without labels (Fig. 4);
- :func:`sample_efficiency` / :func:`plot_sample_efficiency`: mIoU vs labelled images (Table 4);
- :func:`noise_study` / :func:`plot_noise_variants`: shared, per-step and averaged noise (Table 5);
- :func:`corruption_study` / :func:`plot_corruptions` (with :func:`corrupt`): robustness (Fig. 6);
- :func:`reproduce`: the Table 2 protocol on the reference datasets (``sklearn-ddpm reproduce``);
- :func:`synthetic_data_study` / :func:`synthetic_table`: real vs DDPM-generated training data
  (Table 3: DDPM on real, DDPM on synthetic, DatasetDDPM).
"""

from ..datasets._paper import PAPER_DATASETS, PaperDataset, load_paper_dataset
from ._clustering import discover_parts
from ._corruptions import CORRUPTIONS, corrupt, corruption_study
from ._figures import (plot_block_step_heatmap, plot_corruptions, plot_noise_variants, plot_parts,
                       plot_sample_efficiency)
from ._noise import NOISE_VARIANTS, noise_study
from ._representation import SWEEP_STEPS, block_step_sweep, class_size_groups
from ._reproduce import reproduce
from ._sample_efficiency import sample_efficiency
from ._synthetic import SYNTHETIC_METHODS, synthetic_data_study, synthetic_table

__all__ = [
    "CORRUPTIONS",
    "NOISE_VARIANTS",
    "PAPER_DATASETS",
    "PaperDataset",
    "SWEEP_STEPS",
    "SYNTHETIC_METHODS",
    "block_step_sweep",
    "class_size_groups",
    "corrupt",
    "corruption_study",
    "discover_parts",
    "load_paper_dataset",
    "noise_study",
    "plot_block_step_heatmap",
    "plot_corruptions",
    "plot_noise_variants",
    "plot_parts",
    "plot_sample_efficiency",
    "reproduce",
    "sample_efficiency",
    "synthetic_data_study",
    "synthetic_table",
]
