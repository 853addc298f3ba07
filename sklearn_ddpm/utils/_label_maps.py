"""What every estimator that predicts label maps shares: scored by mIoU, fed 3-d arrays."""

from sklearn.base import ClassifierMixin

from ..metrics import miou_score


class LabelMapClassifierMixin(ClassifierMixin):
    """A classifier whose samples are images and whose predictions are label maps.

    ``score`` is the mean IoU (classes present in truth or prediction; ``ignore_index`` skipped)
    instead of the pixel accuracy ``ClassifierMixin`` would give, and the estimator's tags declare
    image-shaped (3-d) input and deterministic predictions for scikit-learn's checks.
    """

    def score(self, X, y):
        """Mean IoU of the predictions (classes present in truth or prediction; ``ignore_index`` skipped)."""
        return miou_score(y, self.predict(X), ignore_index=self.ignore_index)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
