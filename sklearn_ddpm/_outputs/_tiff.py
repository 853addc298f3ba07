"""``predict --format tiff``: one label TIFF per image, probabilities and uncertainty beside it.

Layout in the output folder (``NAME`` is the image's name; the folders mirror ``--format png``):

- ``NAME.tif``: the labels ``(y, x)``, uint8 with a palette (the classes' colours) below 257
  classes, else uint16; its description is JSON (tifffile's shaped metadata) holding
  ``class_names`` (name of class ``k`` at index ``k``) and ``colours`` (``[r, g, b]`` each);
- ``probabilities/NAME.tif`` (``probabilities=True``): ``(c, y, x)`` float16, one page per class,
  page ``k`` the mean member probability of class ``k`` (0 for a named class the model was not
  fitted on), axes ``CYX`` and ``class_names`` in the description;
- ``uncertainty/NAME.tif`` (``uncertainty=True``, and always with ``probabilities``): ``(y, x)``
  float32, the members' Jensen-Shannon divergence (0 = agreement, at most log(members)).

Every file is a contiguous TIFF made with :func:`tifffile.memmap` under a temporary name
(``.NAME.tif.XXXX.tmp``) in its folder, filled a band of rows at a time from
:meth:`MLPEnsembleClassifier.predict_bands` (so the outputs of a large image are never held whole
in memory) and renamed when complete: ``--resume`` never takes a half-written file for done, and
removes the temporaries a killed run left.
"""

import contextlib
import os
import tempfile

import numpy as np

from ..datasets._folders import image_stem
from ..utils._atomic import ensure_directory
from ._writers import _exists, class_planes


class TiffPredictionWriter:
    """The TIFF outputs of every image of ``predict --format tiff``.

    Parameters
    ----------
    out : path-like
        The output folder (created, with ``probabilities/`` and ``uncertainty/`` as needed).
    probabilities : bool
        Also write the per-class probabilities (float16) and the uncertainty.
    uncertainty : bool
        Also write the uncertainty (float32).
    class_names : list of str
        A name for every class the model can predict.
    classes : array-like of int
        The model's ``classes_`` (the channels of its probabilities).
    progress : bool, default=False
        Show a bar over each large image's rows (:func:`._progress.counted_rows`).
    """

    streams = True  # predict_and_write hands this writer the image, not its labels

    def __init__(self, out, *, probabilities, uncertainty, class_names, classes, progress=False):
        from ..plotting import label_palette

        self.out = ensure_directory(out, "-o/--output folder")
        self.probabilities = probabilities
        self.uncertainty = uncertainty or probabilities
        self.class_names, self.classes = list(class_names), np.asarray(classes)
        self.progress = progress
        for sub, wanted in (("probabilities", self.probabilities), ("uncertainty", self.uncertainty)):
            if wanted:
                ensure_directory(self.out / sub, "-o/--output folder")
        self.palette = label_palette()

    def files(self, path):
        """Labels, then probabilities and uncertainty when written."""
        stem = image_stem(path)
        files = [self.out / f"{stem}.tif"]
        if self.probabilities:
            files.append(self.out / "probabilities" / f"{stem}.tif")
        if self.uncertainty:
            files.append(self.out / "uncertainty" / f"{stem}.tif")
        return files

    def done(self, path, since_ns=None):
        """Whether every output of ``path`` exists (for ``--resume``), modified at or after ``since_ns`` if given."""
        return all(_exists(f, since_ns) for f in self.files(path))

    def write_predicted(self, path, image, features, clf, display=None):
        """Predict ``image`` band by band with the fitted ``features`` step and ``clf``, writing its files."""
        from ._progress import counted_rows

        bands = ((top, bottom, outputs)
                 for _, top, bottom, outputs in clf.predict_bands(features.transform([image])))
        return self.write_bands(path, image.shape[:2], counted_rows(bands, image.shape[0], path.name, self.progress))

    def write_bands(self, path, size, bands):
        """Write the files of the image ``path`` of ``size`` ``(height, width)`` from its prediction bands.

        ``bands`` are ``(top, bottom, outputs)`` in row order, as
        :meth:`MLPEnsembleClassifier.predict_bands` yields them (without the image index).
        """
        import tifffile

        height, width = (int(v) for v in size)
        n_classes = len(self.class_names)
        files = self.files(path)
        colours = self.palette[:n_classes, :3].astype(int).tolist()
        about = {"class_names": self.class_names, "colours": colours}
        label_dtype = np.uint8 if n_classes <= 256 else np.uint16
        label_options = {}
        if label_dtype == np.uint8:
            colormap = np.zeros((3, 256), np.uint16)
            colormap[:, :n_classes] = np.asarray(colours, np.uint16).T * 257  # 8-bit colours as TIFF's 16-bit
            label_options = {"photometric": "palette", "colormap": colormap}
        with contextlib.ExitStack() as stack:
            temporaries = []

            def create(final, shape, dtype, metadata, **options):
                fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
                os.close(fd)
                stack.callback(_unlink, tmp)  # a no-op once renamed
                temporaries.append((tmp, final))
                return tifffile.memmap(tmp, shape=shape, dtype=dtype, metadata=metadata, **options)

            labels = create(files[0], (height, width), label_dtype, {**about, "quantity": "class index"},
                            **label_options)
            probability = uncertainty = None
            if self.probabilities:
                probability = create(files[1], (n_classes, height, width), np.float16,
                                     {**about, "axes": "CYX", "quantity": "class probability"})
            if self.uncertainty:
                uncertainty = create(files[-1], (height, width), np.float32,
                                     {"quantity": "Jensen-Shannon divergence of the ensemble members"})
            row = 0
            for top, bottom, outputs in bands:
                if top != row:
                    raise RuntimeError(f"{files[0]}: a prediction band starts at row {top}, expected {row}.")
                labels[top:bottom] = outputs["labels"]
                if probability is not None:
                    probability[:, top:bottom] = class_planes(outputs["probabilities"], self.classes, n_classes)
                if uncertainty is not None:
                    uncertainty[top:bottom] = outputs["uncertainty"]
                row = bottom
            if row != height:
                raise RuntimeError(f"{files[0]}: the prediction bands ended at row {row} of {height}.")
            for array in (labels, probability, uncertainty):
                if array is not None:
                    array.flush()
                    del array
            del labels, probability, uncertainty  # unmapped before the files are synced and renamed
            # The labels last: until they exist, the image is not done for --resume.
            for tmp, final in sorted(temporaries, key=lambda t: t[1] == files[0]):
                _sync(tmp)
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, final)
        return files[0]


def _unlink(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask

