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


def start_run(pipeline, paths, out, *, overlay, uncertainty, class_names, resume, format="png", probabilities=False):
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
    format : {"png", "zarr"}, default="png"
        "zarr": one OME-Zarr store per image (labels with class names and colours, uncertainty,
        optionally probabilities), written band by band (:class:`._zarr.ZarrPredictionWriter`).
    probabilities : bool, default=False
        With ``format="zarr"``, also write the per-class probabilities (float16).

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

        writer = ZarrPredictionWriter(out, probabilities=probabilities, class_names=names)
    else:
        writer = PredictionWriter(out, overlay=overlay, uncertainty=uncertainty, n_estimators=clf.n_estimators,
                                  class_names=names)
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
    paths : list of pathlib.Path
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
    from ..datasets import read_image

    summary = PredictionSummary()
    features, clf = pipeline[:-1], pipeline[-1]
    batch_size = pipeline[0].forward_batch_size()  # images read and predicted together
    if keep_since_ns is not None:
        done = [p for p in paths if writer.done(p, since_ns=keep_since_ns)]
        summary.written += [p.name for p in done]
        paths = [p for p in paths if p not in done]
    for start in range(0, len(paths), batch_size):
        batch, images = [], []
        for path in paths[start:start + batch_size]:
            try:
                images.append(read_image(path))
                batch.append(path)
            except (ValueError, OSError) as exc:
                summary.failed.append((str(path), str(exc)))
        if not images:
            continue
        if getattr(writer, "streams", False):  # predicted band by band while written (large images)
            for path, image in zip(batch, images):
                try:
                    writer.write_predicted(path, image, features, clf)
                    summary.written.append(path.name)
                except Exception as exc:
                    summary.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        try:
            outputs = _predict(features, clf, images, writer.uncertainty)
        except Exception:
            # One bad image must not cost its batch: predict the images one by one to find it.
            outputs = [_predict_one(features, clf, image, writer.uncertainty) for image in images]
        for path, image, output in zip(batch, images, outputs):
            if isinstance(output, Exception):
                summary.failed.append((str(path), f"{type(output).__name__}: {output}"))
                continue
            writer.write(path, image, *output, keep_since_ns=keep_since_ns)
            summary.written.append(path.name)
    return summary


def _predict(features, clf, images, uncertainty):
    """``[(labels, uncertainty or None), ...]`` of ``images``, one UNet pass per batch."""
    pixel_features = features.transform(images)
    labels = _as_list(clf.predict(pixel_features))
    maps = _as_list(clf.predict_uncertainty(pixel_features)) if uncertainty else [None] * len(images)
    return list(zip(labels, maps))


def _predict_one(features, clf, image, uncertainty):
    try:
        return _predict(features, clf, [image], uncertainty)[0]
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
