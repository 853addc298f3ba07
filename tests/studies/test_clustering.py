import matplotlib.pyplot as plt
import numpy as np

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.studies import discover_parts, plot_parts


def test_parts_are_one_clustering_over_all_images(toy_data, unet):
    images = toy_data[0][:2] + [toy_data[2][0][:20, :16]]  # sizes differ: maps come back at each size
    maps, kmeans = discover_parts(images, model=unet, blocks=(4, 7), steps=(50,), n_clusters=4, n_fit_pixels=500)
    assert [m.shape for m in maps] == [(24, 24), (24, 24), (20, 16)]
    assert kmeans.cluster_centers_.shape[0] == 4
    assert set(np.unique(np.concatenate([m.ravel() for m in maps]))) <= set(range(4))

    # Every pixel gets the label of its nearest centre, with the same centres for every image.
    features = DDPMFeatureTransformer(unet, blocks=(4, 7), steps=(50,)).fit().transform(images)
    dense = features.dense_image(2).reshape(-1, features.n_features)
    distances = ((dense[:, None, :] - kmeans.cluster_centers_[None]) ** 2).sum(-1)
    agree = (distances.argmin(1) == maps[2].ravel()).mean()
    assert agree > 0.99  # float32 ties aside

    again, _ = discover_parts(images, model=unet, blocks=(4, 7), steps=(50,), n_clusters=4, n_fit_pixels=500)
    assert all((a == b).all() for a, b in zip(maps, again))

    fig = plot_parts(images, maps, n_clusters=4)
    assert fig.axes[-1].get_ylabel() == "cluster"
    plt.close(fig)
