"""Band-by-band prediction: the outputs of a large image, a band of rows at a time."""

import numpy as np

from ._voting import js_uncertainty

#: output pixels per block of rows the ``refine`` filter runs on (plus its context rows)
REFINE_BLOCK_PIXELS = 2**19


def prediction_bands(clf, X):
    """The generator behind :meth:`MLPEnsembleClassifier.predict_bands`."""
    table = clf._prediction_table(X)
    n_classes = len(clf.classes_)
    for i in range(len(table)):
        bands = clf._member_probability_bands(table, i)
        if clf.refine is None:
            for top, bottom, p in bands:
                yield i, top, bottom, _outputs(clf, p, p.mean(1).numpy(), clf._vote(p, n_classes).numpy(),
                                               bottom - top)
            continue
        yield from _refined_bands(clf, i, bands, clf._guide(table, i), table.sizes[i])


def _outputs(clf, p, mean, decided, rows):
    return {
        "labels": clf.classes_[decided].reshape(rows, -1),
        "probabilities": np.asarray(mean, np.float32).reshape(rows, -1, mean.shape[-1]),
        "uncertainty": js_uncertainty(p).numpy().reshape(rows, -1),
    }


def _refined_bands(clf, i, bands, guide, size):
    """Bands refined by ``clf.refine``: blocks of rows with ``refine.reach`` rows of context each side.

    A filter whose output at a pixel depends on the rows within ``reach`` of it gives, on a block
    with that context, the rows it gives on the whole image. A filter without ``reach`` gets the
    whole image at once.
    """
    height, width = (int(v) for v in size)
    reach = getattr(clf.refine, "reach", None)
    block = height if reach is None else max(2 * int(reach), 1, REFINE_BLOCK_PIXELS // width)
    reach = height if reach is None else int(reach)
    means, uncertainties = [], []  # buffered rows first..received
    first = received = emitted = 0
    for top, bottom, p in bands:
        means.append(p.mean(1).numpy().reshape(bottom - top, width, -1))
        uncertainties.append(js_uncertainty(p).numpy().reshape(bottom - top, width))
        received = bottom
        while emitted < height and received >= min(height, min(height, emitted + block) + reach):
            stop = min(height, emitted + block)
            lo, hi = max(0, emitted - reach), min(height, stop + reach)
            mean = np.concatenate(means) if len(means) > 1 else means[0]
            uncertainty = np.concatenate(uncertainties) if len(uncertainties) > 1 else uncertainties[0]
            means, uncertainties = [mean], [uncertainty]
            refined = clf.refine.refine(mean[lo - first : hi - first], guide[lo:hi])[emitted - lo : stop - lo]
            yield i, emitted, stop, {
                "labels": clf.classes_[refined.argmax(-1)],
                "probabilities": refined.astype(np.float32, copy=False),
                "uncertainty": uncertainty[emitted - first : stop - first],
            }
            emitted = stop
            drop = max(0, emitted - reach) - first  # rows no later block reads
            if drop > 0:
                means, uncertainties = [mean[drop:]], [uncertainty[drop:]]
                first += drop
