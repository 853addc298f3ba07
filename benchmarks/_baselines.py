"""The classical baseline the package is measured against: scikit-image trainable segmentation.

``multiscale_basic_features`` (intensity, edges and texture at sigma 1-16) per pixel and a random
forest (100 trees, depth 10) trained on pixels sampled from the labelled images — the setting of
``shared/ANCHORS.md``.
"""

import numpy as np


def skimage_features(image):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image, channel_axis=-1, sigma_min=1, sigma_max=16).astype(np.float32)


class SkimageSegmenter:
    """Fit on (images, masks) with ``pixels_per_image`` sampled pixels each; predict label maps."""

    def __init__(self, pixels_per_image=5000, n_estimators=100, max_depth=10, random_state=0, ignore_index=255):
        self.pixels_per_image = pixels_per_image
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.random_state = random_state
        self.ignore_index = ignore_index

    def fit(self, images, masks):
        return self.fit_features((skimage_features(image) for image in images), masks)

    def fit_features(self, features, masks):
        """``fit`` on precomputed ``skimage_features`` of the images (an iterable, read once)."""
        from sklearn.ensemble import RandomForestClassifier

        rng = np.random.default_rng(self.random_state)
        X, y = [], []
        for image_features, mask in zip(features, masks):
            image_features = image_features.reshape(-1, image_features.shape[-1])
            labels = np.asarray(mask).ravel()
            labelled = np.flatnonzero(labels != self.ignore_index)
            picked = rng.choice(labelled, min(self.pixels_per_image, len(labelled)), replace=False)
            X.append(image_features[picked])
            y.append(labels[picked])
        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, random_state=self.random_state, n_jobs=-1
        )
        self.forest_.fit(np.concatenate(X), np.concatenate(y))
        return self

    def predict(self, images):
        return [self.predict_features(skimage_features(image)) for image in images]

    def predict_features(self, features):
        """Label map of one image from its ``skimage_features`` (H, W, F)."""
        flat = features.reshape(-1, features.shape[-1])
        return self.forest_.predict(flat).reshape(features.shape[:2])
