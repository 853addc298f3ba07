"""What ``predict`` and ``evaluate`` write: label PNGs, overlays, uncertainty maps, the IoU table.

Every file goes through :mod:`sklearn_ddpm.utils._atomic`, so an interrupted run never leaves a
truncated file and ``--resume`` can trust any file that exists.
"""

import numpy as np

from ..datasets._folders import image_stem
from ..metrics import mean_iou
from ..utils._atomic import atomic_save_image, atomic_save_npy, ensure_directory


class PredictionWriter:
    """The output files of every image of ``predict``, in ``out`` and its sub-folders.

    Parameters
    ----------
    out : path-like
        The output folder (created, with ``overlay/`` and ``uncertainty/`` when asked for).
    overlay : bool
        Also write colour overlays with a legend of ``class_names``.
    uncertainty : bool
        Also write heat maps and ``.npy`` values of the ensemble's Jensen-Shannon divergence.
    class_names : list of str
        Names of every class the model can predict (for the legends).
    n_estimators : int
        Ensemble size: the heat maps' fixed scale is log(n_estimators).
    probabilities : bool, default=False
        Also write ``probabilities/NAME.npy``: float16 of shape ``(n_classes, H, W)``, channel
        ``k`` the probability of class ``k`` (0 for a class the model was not fitted on).
    classes : array-like of int, default=None
        The model's ``classes_`` (the channels of its probabilities); needed with ``probabilities``.
    """

    def __init__(self, out, *, overlay, uncertainty, class_names, n_estimators, probabilities=False, classes=None):
        from ..plotting import label_palette

        self.out = ensure_directory(out, "-o/--output folder")
        self.overlay, self.uncertainty, self.class_names = overlay, uncertainty, class_names
        self.probabilities, self.classes = probabilities, classes
        if overlay:
            ensure_directory(self.out / "overlay", "-o/--output folder")
        if uncertainty:
            ensure_directory(self.out / "uncertainty", "-o/--output folder")
        if probabilities:
            ensure_directory(self.out / "probabilities", "-o/--output folder")
        self.palette = label_palette()
        # JS divergence of an M-member ensemble is at most log(M): a fixed scale keeps maps comparable.
        self.vmax = np.log(n_estimators) if n_estimators > 1 else 1.0

    def files(self, path):
        """The files written for the image at ``path``: labels, then overlay, heat map and values."""
        stem = image_stem(path)
        files = [self.out / f"{stem}.png"]
        if self.overlay:
            files.append(self.out / "overlay" / f"{stem}.png")
        if self.uncertainty:
            files += [self.out / "uncertainty" / f"{stem}.png", self.out / "uncertainty" / f"{stem}.npy"]
        if self.probabilities:
            files.append(self.out / "probabilities" / f"{stem}.npy")
        return files

    def done(self, path, since_ns=None):
        """Whether every output of ``path`` exists (for ``--resume``), modified at or after ``since_ns`` if given."""
        return all(_exists(f, since_ns) for f in self.files(path))

    def write(self, path, image, labels, uncertainty=None, probabilities=None, *, keep_since_ns=None):
        """Write the outputs of one image; with ``keep_since_ns``, not those modified at or after it.

        ``image`` is the ``(H, W, 3)`` uint8 image the overlay is drawn on; ``probabilities``
        ``(H, W, len(classes))`` is needed when the writer writes them.
        """
        from PIL import Image

        from ..plotting import overlay, uncertainty_to_color

        savers = [lambda f: atomic_save_image(label_image(labels, self.palette), f)]
        if self.overlay:
            savers.append(lambda f: atomic_save_image(
                Image.fromarray(overlay(image, labels, class_names=self.class_names)), f))
        if self.uncertainty:
            savers += [lambda f: atomic_save_image(Image.fromarray(uncertainty_to_color(uncertainty, vmax=self.vmax)), f),
                       lambda f: atomic_save_npy(np.asarray(uncertainty, dtype=np.float32), f)]
        if self.probabilities:
            savers.append(lambda f: atomic_save_npy(
                class_planes(probabilities, self.classes, len(self.class_names)), f))
        for save, file in zip(savers, self.files(path)):
            if keep_since_ns is None or not _exists(file, keep_since_ns):
                save(file)


def class_planes(probabilities, classes, n_classes, dtype=np.float16):
    """``(n_classes, H, W)`` planes of ``(H, W, len(classes))`` probabilities: plane ``k`` is class ``k``.

    A class the model was not fitted on (named, but absent from ``classes``) gets a plane of 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm._outputs._writers import class_planes
    >>> class_planes(np.full((1, 2, 2), 0.5), [0, 2], 3)[:, 0, 0].tolist()
    [0.5, 0.0, 0.5]
    """
    probabilities = np.asarray(probabilities)
    out = np.zeros((n_classes, *probabilities.shape[:-1]), dtype=dtype)
    for channel, k in enumerate(np.asarray(classes).astype(int)):
        out[k] = probabilities[..., channel]
    return out


def _exists(file, since_ns=None):
    """Whether ``file`` is a file, modified at or after ``since_ns`` if given."""
    import stat

    try:
        info = file.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and (since_ns is None or info.st_mtime_ns >= since_ns)

def label_image(label_map, palette):
    """A PIL image of class indices: a palette PNG below 256 classes, 16-bit grey above."""
    from PIL import Image

    label_map = np.asarray(label_map)
    if label_map.max(initial=0) < 256:
        # A palette PNG stores the class indices themselves and shows them in colour.
        image = Image.fromarray(label_map.astype(np.uint8), mode="P")
        image.putpalette(palette.ravel().tolist())
        return image
    return Image.fromarray(label_map.astype(np.uint16))


def iou_table(ious, pixels, class_names, n_images):
    """The text table of ``evaluate``: one row per class present, then the mIoU.

    Parameters
    ----------
    ious : ndarray of shape (n_classes,)
        Per-class IoU, NaN for classes neither in the masks nor predicted (no row).
    pixels : ndarray of shape (n_classes,)
        Labelled pixels of every class in the masks.
    class_names : list of str
        A name for every class.
    n_images : int
    """
    rows = [(str(k), class_names[k], f"{100 * iou:.1f}", f"{int(count):,}")
            for k, (iou, count) in enumerate(zip(ious, pixels)) if not np.isnan(iou)]
    header = ("class", "name", "IoU %", "pixels")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]

    def fmt(row):
        return "  ".join([row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                          row[3].rjust(widths[3])])

    return "\n".join([fmt(header)] + [fmt(r) for r in rows] +
                     [f"mIoU {100 * mean_iou(ious):.1f} % over {len(rows)} classes and {n_images} images"])


def evaluation_record(confusion, class_names, n_images, **about):
    """What ``evaluate --json`` writes: per-class IoU with its pixel counts, and the mIoU.

    Parameters
    ----------
    confusion : ndarray of shape (n_classes, n_classes)
        Pixel counts over all images, rows true classes, columns predicted ones
        (:func:`sklearn_ddpm.metrics.confusion_matrix_images`).
    class_names : list of str
        A name for every class.
    n_images : int
    **about
        Added as they are (e.g. the model file and the folders).

    Returns
    -------
    dict
        ``miou`` (a fraction, as :func:`sklearn_ddpm.miou_score`), ``n_classes_scored``,
        ``n_images`` and ``classes``: for each class ``class``, ``name``, ``iou`` (None when the
        class is neither in the masks nor predicted, and then not in the mean), ``intersection``
        and ``union`` (pixels), ``true_pixels`` and ``predicted_pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm._outputs._writers import evaluation_record
    >>> record = evaluation_record(np.array([[3, 1], [0, 4]]), ["background", "horse"], 1)
    >>> record["miou"], record["classes"][1]["intersection"], record["classes"][1]["union"]
    (0.775, 4, 5)
    """
    from ..metrics import iou_from_confusion

    confusion = np.asarray(confusion)
    intersection = np.diag(confusion)
    true_pixels, predicted_pixels = confusion.sum(axis=1), confusion.sum(axis=0)
    ious = iou_from_confusion(confusion)
    classes = [{"class": k, "name": class_names[k], "iou": None if np.isnan(ious[k]) else float(ious[k]),
                "intersection": int(intersection[k]),
                "union": int(true_pixels[k] + predicted_pixels[k] - intersection[k]),
                "true_pixels": int(true_pixels[k]), "predicted_pixels": int(predicted_pixels[k])}
               for k in range(len(confusion))]
    return {**about, "miou": mean_iou(ious), "n_classes_scored": int((~np.isnan(ious)).sum()),
            "n_images": int(n_images), "classes": classes}


_CSV_COLUMNS = ("class", "name", "iou", "intersection", "union", "true_pixels", "predicted_pixels")


def write_evaluation(record, json_path=None, csv_path=None):
    """Write an :func:`evaluation_record` as JSON and/or CSV (one row per class, then a ``mIoU`` row), atomically."""
    import csv
    import json

    from ..utils._atomic import atomic_write

    if json_path is not None:
        with atomic_write(json_path, "w") as f:
            f.write(json.dumps(record, indent=1) + "\n")
    if csv_path is not None:
        with atomic_write(csv_path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=_CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in record["classes"]:
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in _CSV_COLUMNS})
            writer.writerow({"name": "mIoU", "iou": record["miou"]})
