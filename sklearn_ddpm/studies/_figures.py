"""Figures of the studies (matplotlib, imported when a figure is drawn)."""

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the "plot" extra
        raise ImportError("figures need matplotlib: pip install 'sklearn-ddpm[plot]'.") from exc
    return plt


def plot_block_step_heatmap(table, values=("miou", "miou_small", "miou_large"), title=None):
    """Heatmaps (block × step) of :func:`block_step_sweep` results, one panel per column of ``values``.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`block_step_sweep`.
    values : tuple of str, default=("miou", "miou_small", "miou_large")
        Columns to draw; columns that are all NaN are skipped.
    title : str, default=None
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_block_step_heatmap(table)  # doctest: +SKIP
    >>> fig.savefig("block_step.png")  # doctest: +SKIP
    """
    plt = _pyplot()
    labels = {"miou": "all classes", "miou_small": "small classes", "miou_large": "large classes"}
    values = [v for v in values if v in table and table[v].notna().any()]
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values) + 0.8, 0.32 * table.block.nunique() + 2.2),
                             squeeze=False, constrained_layout=True)
    for ax, value in zip(axes[0], values):
        grid = table.pivot(index="block", columns="step", values=value) * 100
        image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", origin="upper")
        ax.set_xticks(range(grid.shape[1]), [str(s) for s in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(b) for b in grid.index])
        ax.set_xlabel("diffusion step t")
        ax.set_ylabel("decoder block (deep → shallow)")
        ax.set_title(f"mIoU, {labels.get(value, value)}")
        best = np.unravel_index(np.nanargmax(grid.to_numpy()), grid.shape)
        ax.scatter([best[1]], [best[0]], marker="*", s=120, c="white", edgecolors="black", label="best")
        fig.colorbar(image, ax=ax, label="mIoU (%)")
    fig.suptitle(title or "Pixel classifier on one block at one step")
    return fig


def plot_parts(images, label_maps, n_clusters=None, title=None, max_images=6):
    """Images (top row) and their k-means part maps (bottom row) with the same colour per cluster.

    Parameters
    ----------
    images : list of (H, W, 3) uint8 arrays
    label_maps : list of (H, W) int arrays
        Output of :func:`discover_parts`.
    n_clusters : int, default=None
        Number of clusters (fixes the colour scale); the largest label + 1 by default.
    title : str, default=None
    max_images : int, default=6

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    n = min(len(images), max_images)
    k = int(n_clusters or max(int(np.max(m)) for m in label_maps) + 1)
    cmap = ListedColormap(plt.get_cmap("tab10" if k <= 10 else "tab20")(np.arange(k)))
    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n + 1.2, 5), squeeze=False, constrained_layout=True)
    for i in range(n):
        axes[0, i].imshow(images[i])
        mappable = axes[1, i].imshow(label_maps[i], cmap=cmap, norm=norm, interpolation="nearest")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("k-means cluster")
    fig.colorbar(mappable, ax=axes[1, :].tolist(), ticks=range(k), label="cluster")
    fig.suptitle(title or f"Unsupervised parts: k-means (k={k}) on diffusion features")
    return fig


def plot_sample_efficiency(runs, title=None, baseline=None):
    """Mean ± std mIoU against the number of labelled images (output of :func:`sample_efficiency`).

    Parameters
    ----------
    runs : pandas.DataFrame
    title : str, default=None
    baseline : dict of str to float, default=None
        Horizontal reference lines, name → mIoU in [0, 1].

    Returns
    -------
    matplotlib.figure.Figure
    """
    stats = runs.groupby("n_labeled").miou.agg(["mean", "std", "count"]).fillna({"std": 0.0}) * [100, 100, 1]
    fig, ax = _figure((5.5, 4))
    ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=4,
                label=f"DDPM features (mean ± std, {int(stats['count'].max())} seeds)")
    for name, value in (baseline or {}).items():
        ax.axhline(100 * value, ls="--", c="grey", label=name)
    ax.set_xscale("log")
    ax.set_xticks(stats.index, [str(n) for n in stats.index])
    return _miou_axes(fig, ax, "labelled training images", title or "Sample efficiency")


def plot_corruptions(table, title=None):
    """mIoU against corruption severity, one line per corruption (output of :func:`corruption_study`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _figure((6, 4))
    for name, group in table.groupby("corruption", sort=False):
        group = group.sort_values("severity")
        ax.plot(group.severity, 100 * group.miou, marker="o", label=name.replace("_", " "))
    ax.set_xticks(sorted(table.severity.unique()))
    return _miou_axes(fig, ax, "severity (0 = clean)", title or "Robustness to image corruptions (trained on clean images)")


def plot_noise_variants(runs, title=None):
    """Bar chart, mean ± std mIoU per noise variant (output of :func:`noise_study`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    stats = runs.groupby("variant", sort=False).miou.agg(["mean", "std"]).fillna(0.0) * 100
    fig, ax = _figure((5.5, 4))
    ax.bar(range(len(stats)), stats["mean"], yerr=stats["std"], capsize=5, color="tab:blue")
    ax.set_xticks(range(len(stats)), stats.index)
    ax.set_ylabel("test mIoU (%)")
    low = max(0.0, float((stats["mean"] - stats["std"]).min()) - 5)
    ax.set_ylim(low, min(100.0, float((stats["mean"] + stats["std"]).max()) + 3))
    ax.set_title(title or "Noise used for feature extraction")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _figure(size):
    """A figure with one axes, laid out to fit its labels."""
    return _pyplot().subplots(figsize=size, constrained_layout=True)


def _miou_axes(fig, ax, xlabel, title):
    """Label a line plot of test mIoU, with a grid and the legend; return its figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test mIoU (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
