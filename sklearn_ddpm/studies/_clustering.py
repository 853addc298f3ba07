"""Unsupervised part discovery: k-means on diffusion pixel features (paper, Fig. 4)."""

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.utils import check_random_state

from ._common import as_list, make_transformer


def discover_parts(images, *, model=None, blocks="auto", steps=(50, 150, 250), n_clusters=5,
                   n_fit_pixels=20000, minibatch=False, transformer_params=None, random_state=0):
    """Cluster the pixels of ``images`` into ``n_clusters`` parts, without labels.

    Pixel features of the chosen blocks and steps are computed once; ``n_fit_pixels`` pixels drawn
    uniformly from all images fit one k-means, which then labels every pixel of every image — so a
    cluster (and its colour in :func:`plot_parts`) means the same part in every image.

    Parameters
    ----------
    images : list of (H, W, 3) uint8 arrays or (N, H, W, 3) array
    model : see :class:`DDPMFeatureTransformer`, default=None
        None is the bundled horse DDPM.
    blocks : "auto" or tuple of int, default="auto"
    steps : tuple of int, default=(50, 150, 250)
    n_clusters : int, default=5
    n_fit_pixels : int, default=20000
        Pixels sampled to fit the k-means.
    minibatch : bool, default=False
        Use :class:`~sklearn.cluster.MiniBatchKMeans` (faster for many pixels).
    transformer_params : dict, default=None
        Further :class:`DDPMFeatureTransformer` parameters.
    random_state : int, default=0
        Seed of the noise, the pixel sample and the k-means.

    Returns
    -------
    label_maps : list of (H, W) int arrays
        Cluster of every pixel, at each image's original size.
    kmeans : KMeans or MiniBatchKMeans
        The fitted clustering (``cluster_centers_`` in feature space).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.backbone import tiny_unet
    >>> from sklearn_ddpm.studies import discover_parts
    >>> images = np.random.default_rng(0).integers(0, 255, (2, 24, 24, 3), dtype=np.uint8)
    >>> maps, kmeans = discover_parts(images, model=tiny_unet(), blocks=(3,), steps=(50,), n_clusters=3)
    >>> maps[0].shape, kmeans.n_clusters
    ((24, 24), 3)
    """
    images = as_list(images)
    rng = check_random_state(random_state)
    features = make_transformer(model, blocks, steps, transformer_params, random_state).transform(images)
    sizes = features.image_sizes
    counts = sizes.prod(axis=1)
    n_total = int(counts.sum())
    picked = rng.choice(n_total, size=min(int(n_fit_pixels), n_total), replace=False)
    image_index = np.searchsorted(np.cumsum(counts), picked, side="right")
    offset = picked - np.concatenate([[0], np.cumsum(counts)[:-1]])[image_index]
    ys, xs = offset // sizes[image_index, 1], offset % sizes[image_index, 1]
    sample = features.gather(image_index, ys, xs).numpy()
    if minibatch:
        kmeans = MiniBatchKMeans(n_clusters, random_state=rng.randint(2**31), n_init=3)
    else:
        kmeans = KMeans(n_clusters, random_state=rng.randint(2**31), n_init=3)
    kmeans.fit(sample)
    label_maps = []
    for i, (height, width) in enumerate(sizes):
        dense = features.dense_image(i).reshape(-1, features.n_features)
        label_maps.append(kmeans.predict(dense).reshape(height, width))
    return label_maps, kmeans
