"""The work of ``predict`` on a few images, shared by the in-process command and the Dask tasks.

Both paths call :func:`predict_and_write`, so a label map written by a Dask worker and one written
by ``sklearn-ddpm predict`` come from the same code, batch for batch.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PredictionSummary:
    """What a prediction run did.

    Attributes
    ----------
    written : list of str
        Names of the images whose outputs were written.
    skipped : list of str
        Names of the images left alone because their outputs all existed (``resume``).
    failed : list of (str, str)
        ``(file, error)`` of every image that could not be read or segmented.
    """

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    def update(self, other):
        """Add the images of another summary (e.g. of one task) to this one."""
        self.written += other.written
        self.skipped += other.skipped
        self.failed += other.failed
        return self

    def report(self, out):
        """The one-line report of ``sklearn-ddpm predict``."""
        resumed = f", {len(self.skipped)} already done (--resume)" if self.skipped else ""
        failed = f", {len(self.failed)} unreadable" if self.failed else ""
        return f"Wrote predictions for {len(self.written)} images to {out}{resumed}{failed}."


def start_run(pipeline, paths, out, *, overlay, uncertainty, class_names, resume, format="png", probabilities=False,
              progress=False):
    """The writer of a ``predict`` run and the images left to segment.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        The fitted segmenter (for its classes and ensemble size).
    paths : list of pathlib.Path
    out : path-like
        Output folder, created.
    overlay, uncertainty : bool
    class_names : list of str or None
        Legend names; None uses those given at fit, else ``class 0``, ``class 1``, ...
    resume : bool
        Leave out the images whose outputs all exist, and remove the temporary files
        (``.NAME.*.tmp``) of writes that a killed run left unfinished; two runs must not write to
        one folder at once.
    format : {"png", "tiff", "zarr"}, default="png"
        "zarr": one OME-Zarr store per image (labels with class names and colours, uncertainty,
        optionally probabilities), written band by band (:class:`._zarr.ZarrPredictionWriter`);
        "tiff": a label TIFF per image, probabilities and uncertainty TIFFs beside it, written
        band by band (:class:`._tiff.TiffPredictionWriter`).
    probabilities : bool, default=False
        Also write the per-class probabilities (float16): ``probabilities/NAME.npy`` with
        ``format="png"``, a TIFF stack or a zarr array with the others.
    progress : bool, default=False
        With ``format`` "zarr" or "tiff": a bar over the rows of each image that takes more
        than a second (a large image is one step of a bar over images).

    Returns
    -------
    writer : PredictionWriter
    todo : list of pathlib.Path
    summary : PredictionSummary
        With the images left out in ``skipped``.
    """
    from ._writers import PredictionWriter

    clf = pipeline[-1]
    names = model_class_names(clf, class_names or getattr(pipeline, "class_names_", None))
    if format == "zarr":
        from ._zarr import ZarrPredictionWriter

        writer = ZarrPredictionWriter(out, probabilities=probabilities, class_names=names, progress=progress)
    elif format == "tiff":
        from ._tiff import TiffPredictionWriter

        writer = TiffPredictionWriter(out, probabilities=probabilities, uncertainty=uncertainty, class_names=names,
                                      classes=clf.classes_, progress=progress)
    else:
        writer = PredictionWriter(out, overlay=overlay, uncertainty=uncertainty, n_estimators=clf.n_estimators,
                                  class_names=names, probabilities=probabilities, classes=clf.classes_)
    summary, todo = PredictionSummary(), []
    if resume:
        _remove_stale_temporaries(out)
    for path in paths:
        if resume and writer.done(path):
            summary.skipped.append(path.name)
        else:
            todo.append(path)
    return writer, todo, summary


def predict_and_write(pipeline, paths, writer, *, keep_since_ns=None):
    """Segment the images at ``paths`` in batches of the pipeline's ``batch_size`` and write their outputs.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A fitted segmenter (see :func:`sklearn_ddpm.load_segmenter`).
    paths : list of pathlib.Path or ImagePage
        Image files, or images of a folder as :func:`~sklearn_ddpm.datasets._folders.list_image_pages`
        lists them (a plane of a stack); read as stored and mapped by the model's ``channels``
        and ``intensity`` (:class:`~sklearn_ddpm.datasets._folders.PageReader`).
    writer : PredictionWriter
    keep_since_ns : int, default=None
        Output files modified at or after this time (``st_mtime_ns``) were written by the current
        run and are not written again; images whose outputs are all that recent are not even read.
        A Dask task retried after its worker died thus only writes what the dead worker had not.
        None writes everything.

    Returns
    -------
    PredictionSummary
        ``written`` (including images that this run had written already, see ``keep_since_ns``)
        and ``failed``: an image that cannot be read, or whose prediction raises, is recorded with
        its error and the other images go on.
    """
    from ..datasets._folders import PageReader

    summary = PredictionSummary()
    features, clf = pipeline[:-1], pipeline[-1]
    # The pipeline maps each image's values itself; the reader checks them first (an error names
    # the file) and gives the 8-bit RGB view that overlays and stores show.
    reader = PageReader(getattr(pipeline[0], "channels", None), getattr(pipeline[0], "intensity", "8bit"))
    batch_size = pipeline[0].forward_batch_size()  # images read and predicted together
    if keep_since_ns is not None:
        done = [p for p in paths if writer.done(p, since_ns=keep_since_ns)]
        summary.written += [p.name for p in done]
        paths = [p for p in paths if p not in done]
    for start in range(0, len(paths), batch_size):
        batch, images, displays = [], [], []
        for path in paths[start:start + batch_size]:
            try:
                pixels, display = reader.read(path)
                images.append(pixels)
                displays.append(display)
                batch.append(path)
            except (ValueError, OSError) as exc:
                summary.failed.append((str(path), str(exc)))
        if not images:
            continue
        if getattr(writer, "streams", False):  # predicted band by band while written (large images)
            for path, image, display in zip(batch, images, displays):
                try:
                    writer.write_predicted(path, image, features, clf, display=display)
                    summary.written.append(path.name)
                except Exception as exc:
                    summary.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        wanted = (writer.uncertainty, getattr(writer, "probabilities", False))
        try:
            outputs = _predict(features, clf, images, *wanted)
        except Exception:
            # One bad image must not cost its batch: predict the images one by one to find it.
            outputs = [_predict_one(features, clf, image, *wanted) for image in images]
        for path, image, output in zip(batch, displays, outputs):
            if isinstance(output, Exception):
                summary.failed.append((str(path), f"{type(output).__name__}: {output}"))
                continue
            writer.write(path, image, *output, keep_since_ns=keep_since_ns)
            summary.written.append(path.name)
    return summary


def _predict(features, clf, images, uncertainty, probabilities=False):
    """``[(labels, uncertainty or None, probabilities or None), ...]`` of ``images``, one UNet pass per batch."""
    pixel_features = features.transform(images)
    if probabilities:
        # One pass over the members gives all three (predict_bands: the values of predict,
        # predict_proba and predict_uncertainty), assembled here per image.
        parts = [{"labels": [], "uncertainty": [], "probabilities": []} for _ in images]
        for i, _, _, outputs in clf.predict_bands(pixel_features):
            for key, values in parts[i].items():
                values.append(outputs[key])
        return [tuple(np.concatenate(p[key]) for key in ("labels", "uncertainty", "probabilities")) for p in parts]
    labels = _as_list(clf.predict(pixel_features))
    maps = _as_list(clf.predict_uncertainty(pixel_features)) if uncertainty else [None] * len(images)
    return [(label, uncertainty_map, None) for label, uncertainty_map in zip(labels, maps)]


def _predict_one(features, clf, image, uncertainty, probabilities=False):
    try:
        return _predict(features, clf, [image], uncertainty, probabilities)[0]
    except Exception as exc:  # recorded against the image by the caller
        return exc


def _as_list(predictions):
    return list(predictions) if isinstance(predictions, (list, np.ndarray)) else [predictions]


def model_class_names(clf, class_names):
    """A name for every class ``clf`` can predict: the given names, then "class k"."""
    from ..datasets._folders import default_class_names

    return default_class_names(int(max(clf.classes_)) + 1, class_names)


def _remove_stale_temporaries(out):
    """Delete the temporary files of ``atomic_write`` that a killed process left in ``out``.

    A process killed mid-write (SIGKILL, a crashed Dask worker) cannot remove its temporary file;
    the image itself is redone by the resumed run, so the file is garbage.
    """
    from pathlib import Path

    out = Path(out)
    if not out.is_dir():
        return
    for tmp in out.rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
    from ._zarr import remove_partial_stores

    remove_partial_stores(out)  # the temporary OME-Zarr stores (folders) of such a run
