"""One image's prediction as an OME-Zarr store, written a block of rows at a time, atomically.

Layout of ``NAME.ome.zarr`` (OME-Zarr 0.5, written with the ``ome-zarr`` library's metadata
writers; one resolution level):

- the root is the image itself, ``(c, y, x)`` uint8 RGB, so viewers show the labels over it; its
  ``omero`` metadata names and colours the channels red, green and blue (window 0-255), so a viewer
  that reads it (napari-ome-zarr) shows them as one colour image, not three grey ones;
- ``labels/classes``: the label image ``(y, x)`` (uint8, or uint16 past 255 classes) with
  ``image-label`` metadata: each class's colour (``rgba``) and name (``properties``: ``class``);
- ``probabilities`` (with ``probabilities=True``): ``(c, y, x)`` float16, the mean member
  probability of each class (refined, as :meth:`MLPEnsembleClassifier.predict_proba`), channel
  ``k`` named after class ``k`` in its ``omero`` metadata (window 0-1);
- ``uncertainty``: ``(y, x)`` float32, the members' Jensen-Shannon divergence.

The arrays are filled from :meth:`MLPEnsembleClassifier.predict_bands` one chunk-row at a time,
so a 10,000² image's outputs are never held whole. The store is written under a temporary name in
the output folder and renamed when complete: an interrupted run leaves no store that ``--resume``
would take for done.
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

#: the root image's channels in its omero metadata: name and hex colour
RGB_CHANNELS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
#: chunk side of every array (rows are also written in blocks of this many)
CHUNK = 1024
#: what a temporary store's name has after the final name
PARTIAL = ".partial-"
#: on a Dask cluster (tiling models), an image of more pixels is split into band tasks of about
#: this many pixels (:mod:`sklearn_ddpm.distributed._bands`)
PIXELS_PER_TASK = 2**22


def write_zarr_prediction(path, image, bands, class_names, colours, *, probabilities=False, chunk=CHUNK,
                          classes=None):
    """Write one image's prediction as an OME-Zarr store at ``path`` (``.ome.zarr``).

    Parameters
    ----------
    path : path-like
        The store to create; replaced if it exists.
    image : ndarray of shape (height, width, 3), uint8
    bands : iterable of (top, bottom, outputs)
        The image's bands in order, as :meth:`MLPEnsembleClassifier.predict_bands` yields them
        (without the image index): ``outputs`` has ``"labels"`` (class indices), ``"probabilities"``
        and ``"uncertainty"``.
    class_names : list of str
    colours : array of shape (n_classes, 3), uint8
    probabilities : bool, default=False
        Also write the per-class probabilities (float16).
    chunk : int, default=1024
    classes : array-like of int, default=None
        The model's ``classes_``: channel ``j`` of the bands' probabilities is class
        ``classes[j]``. None: classes ``0 .. K-1``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    height, width = image.shape[:2]
    tmp = create_partial_store(path, (height, width), class_names, colours, probabilities=probabilities,
                               chunk=chunk)
    try:
        write_rows(tmp, image, bands, 0, height, classes=classes)
        finish_store(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def create_partial_store(path, size, class_names, colours, *, probabilities=False, chunk=CHUNK):
    """Create the arrays and metadata of the store ``path`` under a temporary name beside it.

    The Dask path creates it once and its tasks fill bands of rows (:func:`write_rows`); the
    store gets its name (:func:`finish_store`) when every row is written.

    Returns
    -------
    pathlib.Path
        The temporary store, ``.NAME.partial-XXXXXXXX`` in the same folder (hidden, and never
        taken for a finished store by ``--resume``).
    """
    import zarr
    from ome_zarr.format import CurrentFormat
    from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

    path = Path(path)
    height, width = (int(v) for v in size)
    n_classes = len(class_names)
    fmt = CurrentFormat()
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{PARTIAL}", dir=path.parent))
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        chunks2, chunks3 = (chunk, chunk), (1, chunk, chunk)
        root.create_array("0", shape=(3, height, width), chunks=(3, chunk, chunk), dtype="uint8")
        rgb = {"channels": [_channel(label, 0, 255, colour) for label, colour in RGB_CHANNELS],
               "rdefs": {"model": "color"}}
        write_multiscales_metadata(root, [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0, 1.0]}]}], fmt=fmt, axes=["c", "y", "x"], name="image",
            metadata={"omero": rgb})
        labels_group = root.create_group("labels")
        classes = labels_group.create_group("classes")
        label_dtype = "uint8" if n_classes <= 256 else "uint16"
        classes.create_array("0", shape=(height, width), chunks=chunks2, dtype=label_dtype)
        write_multiscales_metadata(classes, [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0]}]}], fmt=fmt, axes=["y", "x"], name="classes")
        write_label_metadata(
            labels_group, "classes", fmt=fmt,
            colors=[{"label-value": k, "rgba": [int(v) for v in colours[k][:3]] + [255]} for k in range(n_classes)],
            properties=[{"label-value": k, "class": str(name)} for k, name in enumerate(class_names)],
        )
        uncertainty_group = root.create_group("uncertainty")
        uncertainty_group.create_array("0", shape=(height, width), chunks=chunks2, dtype="float32")
        write_multiscales_metadata(uncertainty_group, [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0]}]}], fmt=fmt, axes=["y", "x"], name="uncertainty")
        if probabilities:
            probability_group = root.create_group("probabilities")
            probability_group.create_array("0", shape=(n_classes, height, width), chunks=chunks3, dtype="float16")
            # under the store's "ome" key, where OME-Zarr 0.5 readers look (the writer puts it there)
            classes_omero = {"channels": [_channel(str(name), 0, 1) for name in class_names]}
            write_multiscales_metadata(probability_group, [{"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0, 1.0]}]}], fmt=fmt, axes=["c", "y", "x"], name="probabilities",
                metadata={"omero": classes_omero})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _channel(label, low, high, colour=None):
    """One channel of ``omero`` metadata: its name, display window and (optionally) hex colour."""
    channel = {"label": label, "active": True,
               "window": {"min": low, "max": high, "start": low, "end": high}}
    return channel if colour is None else {**channel, "color": colour}


def write_rows(store, image, bands, start, stop, classes=None):
    """Write rows ``start:stop`` of a store made by :func:`create_partial_store`, a chunk-row at a time.

    Parameters
    ----------
    store : path-like
        The (temporary) store.
    image : ndarray of shape (height, width, 3), uint8
        The whole image (its rows ``start:stop`` are written), or ``image[start:stop]`` when it
        has ``stop - start`` rows.
    bands : iterable of (top, bottom, outputs)
        Consecutive bands of rows from ``start`` to ``stop`` (as :func:`write_zarr_prediction`).
    start, stop : int
        Rows of the image. Writes go to whole chunk-rows (only the image's last is shorter), so
        writers of disjoint ranges that start at multiples of the chunk never share a chunk.
    classes : array-like of int, default=None
        The model's ``classes_`` (see :func:`write_zarr_prediction`): probability channel ``k``
        of the store is class ``k``, 0 for a named class the model was not fitted on.
    """
    import zarr

    from ._writers import class_planes

    root = zarr.open_group(str(store), mode="r+")
    rgb, labels, uncertainty = root["0"], root["labels/classes/0"], root["uncertainty/0"]
    probability = root["probabilities/0"] if "probabilities" in root else None
    chunk, height = labels.chunks[0], labels.shape[0]
    offset = 0 if image.shape[0] == height else start  # rows of ``image`` before its first given row
    buffer, first = [], start  # bands received but not written, from row ``first``
    received = start
    for top, bottom, outputs in bands:
        if top != received:
            raise RuntimeError(f"{store}: a prediction band starts at row {top}, expected {received}.")
        buffer.append(outputs)
        received = bottom
        while buffer and (received >= min(stop, (first // chunk + 1) * chunk)):
            end = min(stop, (first // chunk + 1) * chunk)  # the end of this chunk-row
            block = {key: np.concatenate([b[key] for b in buffer]) for key in buffer[0]}
            rows = end - first
            rgb[:, first:end] = np.moveaxis(image[first - offset:end - offset], -1, 0)
            labels[first:end] = block["labels"][:rows].astype(labels.dtype)
            uncertainty[first:end] = block["uncertainty"][:rows]
            if probability is not None:
                fitted = block["probabilities"][:rows]
                probability[:, first:end] = class_planes(
                    fitted, np.arange(fitted.shape[-1]) if classes is None else classes, probability.shape[0])
            buffer = [{key: value[rows:] for key, value in block.items()}] if received > end else []
            first = end
    if first != stop:
        raise RuntimeError(f"{store}: the prediction bands ended at row {first} of {start}:{stop}.")


def finish_store(tmp, path):
    """Give the complete temporary store ``tmp`` its name ``path`` (replacing an older store)."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def remove_partial_stores(out):
    """Delete the temporary stores (``.NAME.ome.zarr.partial-*``) that a killed run left in ``out``."""
    out = Path(out)
    if out.is_dir():
        for tmp in out.glob(f".*.ome.zarr{PARTIAL}*"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)


class ZarrPredictionWriter:
    """``predict --format zarr``: one OME-Zarr store per image, ``OUT/NAME.ome.zarr``.

    Each image is predicted band by band (:meth:`MLPEnsembleClassifier.predict_bands`) while its
    store is written, so an image whose features are computed band by band (tiles) is never held
    whole. ``done`` is the store's existence: stores appear only complete.

    Parameters
    ----------
    out : path-like
    probabilities : bool
        Also write the per-class probabilities (float16).
    class_names : list of str
    chunk : int, default=None
        Chunk side of the arrays; None: :data:`CHUNK`. The Dask path splits a large image into
        bands of whole chunk-rows (:mod:`sklearn_ddpm.distributed`).
    progress : bool, default=False
        Show a bar over each large image's rows (:func:`._progress.counted_rows`).
    """

    streams = True  # predict_and_write hands this writer the image, not its labels

    def __init__(self, out, *, probabilities, class_names, chunk=None, progress=False):
        from ..plotting import label_palette
        from ..utils._atomic import ensure_directory

        self.out = ensure_directory(out, "-o/--output folder")
        self.probabilities, self.class_names = probabilities, class_names
        self.chunk = CHUNK if chunk is None else int(chunk)
        self.uncertainty = True
        self.progress = progress
        self.palette = label_palette()

    def files(self, path):
        from ..datasets._folders import image_stem

        return [self.out / f"{image_stem(path)}.ome.zarr"]

    def done(self, path, since_ns=None):
        store = self.files(path)[0]
        return store.is_dir() and (since_ns is None or store.stat().st_mtime_ns >= since_ns)

    def write_predicted(self, path, image, features, clf, display=None):
        """Predict ``image`` band by band with the fitted ``features`` step and ``clf``, writing its store.

        ``display``: the image as ``(H, W, 3)`` uint8 for the store's root, when ``image`` holds
        other values (16-bit, other channels; mapped by the model's ``channels`` and ``intensity``).
        """
        from ._progress import counted_rows

        pixel_features = features.transform([image])
        bands = ((top, bottom, outputs) for _, top, bottom, outputs in clf.predict_bands(pixel_features))
        bands = counted_rows(bands, image.shape[0], path.name, self.progress)
        return write_zarr_prediction(self.files(path)[0], image if display is None else display, bands,
                                     self.class_names, self.colours(), probabilities=self.probabilities,
                                     chunk=self.chunk, classes=clf.classes_)

    def colours(self):
        """Each class's colour, ``(n_classes, 3)`` uint8."""
        return self.palette[: len(self.class_names)]

    def start_store(self, path, size):
        """The temporary store of image ``path`` of ``size`` ``(height, width)``, for bands written apart."""
        return create_partial_store(self.files(path)[0], size, self.class_names, self.colours(),
                                    probabilities=self.probabilities, chunk=self.chunk)
