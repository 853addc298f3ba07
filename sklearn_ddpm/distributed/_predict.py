"""Segment a folder of images on a Dask cluster: one model per worker, tasks of a few images."""

import os
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

try:
    import distributed
except ImportError:
    raise ImportError("sklearn_ddpm.distributed needs dask and distributed: "
                      "pip install 'sklearn-ddpm[distributed]'.") from None

from .._outputs._predicting import predict_and_write
from .._outputs._zarr import finish_store, write_rows
from ._bands import PIXELS_PER_TASK, image_size, plan_bands, splits_into_bands


def predict_folder(model, image_dir, out_dir, *, client=None, n_workers=None, images_per_task=8, overlay=False,
                   uncertainty=False, resume=False, only=None, class_names=None, device=None, batch_size=None,
                   torch_threads=None, progress=True, trust_pickle=False, format="png", probabilities=False,
                   pixels_per_task=PIXELS_PER_TASK):
    """Write label maps (and overlays, uncertainty maps) for every image of a folder on a Dask cluster.

    The images are split into tasks of ``images_per_task``. Every worker loads the model once, in a
    :class:`distributed.WorkerPlugin`, and keeps it for all its tasks (workers that join or are
    restarted later load it too). The outputs are those of ``sklearn-ddpm predict``, written by the
    same code, each file atomically (temporary name, then rename).

    With ``format="zarr"`` and a segmenter that tiles (``DDPMFeatureTransformer(tile=...)``), an
    image of more than ``pixels_per_task`` pixels is split instead into bands of whole zarr
    chunk-rows, each a task: the workers compute and write the bands of one image into its one
    OME-Zarr store, which this process creates under a temporary name and renames when every
    band is written (a failed band fails the image and its store is removed). The rows are those
    of in-process prediction (see :mod:`sklearn_ddpm.distributed._bands`).

    Workers read the images and write the outputs themselves, so ``image_dir``, ``out_dir`` and a
    model given as a path must be visible to every worker under the same paths (one machine, or a
    shared file system).

    Parameters
    ----------
    model : str, path-like or sklearn.pipeline.Pipeline
        A file saved by ``sklearn-ddpm fit`` (each worker loads it), or a fitted segmenter, which is
        sent to every worker in the safe format of :mod:`sklearn_ddpm.io`.
    image_dir : str or path-like
        Folder of images (any Pillow format).
    out_dir : str or path-like
        Output folder: ``NAME.png`` label maps, ``overlay/`` and ``uncertainty/`` when asked for.
    client : distributed.Client, default=None
        A client of a running cluster (local, Slurm, Kubernetes, ...). None starts a
        :class:`distributed.LocalCluster` of ``n_workers`` processes with one task thread each,
        and closes it at the end.
    n_workers : int, default=None
        Workers of the local cluster (None: one per CPU core). Ignored with ``client``.
    images_per_task : int, default=8
        Images per task. Larger tasks cost less scheduling; smaller ones balance the workers
        better and redo less work when a worker dies.
    overlay, uncertainty : bool, default=False
        Also write colour overlays, and the ensemble's uncertainty maps (as ``sklearn-ddpm predict``).
    resume : bool, default=False
        Skip images whose outputs all exist.
    only : iterable of str, default=None
        Segment only these images of the folder (names with or without extension).
    class_names : list of str, default=None
        Names for the overlay legends; None uses those given at fit, else ``class 0``, ``class 1``, ...
    device : str, default=None
        Device of every worker's model ("cpu", "cuda"); None keeps the fitted one. With
        ``dask_cuda.LocalCUDACluster`` each worker sees one GPU, so "cuda" is that worker's GPU.
    batch_size : int, default=None
        Images per UNet forward pass; None keeps the fitted value.
    torch_threads : int, default=None
        torch CPU threads per worker. None divides each machine's cores among the task threads of
        the workers on it (at least 1), so that the workers do not oversubscribe the CPU.
    progress : bool, default=True
        Show a progress bar over the images.
    trust_pickle : bool, default=False
        Let the client and the workers load ``model`` when it is a joblib/pickle file (as
        :func:`~sklearn_ddpm.load_segmenter`). **Unpickling runs any code the file holds: only
        for files you trust.** Without it such a file is refused before a worker starts.
    format : str, default="png"
        As ``sklearn-ddpm predict --format``; "zarr" writes one OME-Zarr store per image
        (``NAME.ome.zarr``: labels with class names and colours, uncertainty).
    probabilities : bool, default=False
        Also write each class's probability (float16), as ``sklearn-ddpm predict --probabilities``.
    pixels_per_task : int, default=4194304
        With ``format="zarr"`` and a tiling segmenter: images of more pixels are split into bands
        of whole chunk-rows (1,024 rows) of about this many pixels (at least one chunk-row), each
        band a task; 1 splits every image into chunk-rows. Each band task reads the whole image
        and runs the tiles its rows read, plus the refine filter's context rows (``2 * radius``),
        so smaller bands cost more work in all.

    Returns
    -------
    PredictionSummary
        ``written`` and ``skipped`` (image names) and ``failed`` (``(file, error)`` pairs: images
        that could not be read or segmented; the run goes on without them).

    Examples
    --------
    >>> from sklearn_ddpm.distributed import predict_folder
    >>> summary = predict_folder("seg.skddpm", "photos/", "predictions/", n_workers=2)  # doctest: +SKIP
    >>> len(summary.written), summary.failed  # doctest: +SKIP
    (40, [])

    On a running cluster (``dask scheduler`` and ``dask worker``, dask-jobqueue, dask-kubernetes):

    >>> from distributed import Client
    >>> with Client("tcp://scheduler:8786") as client:  # doctest: +SKIP
    ...     predict_folder("seg.skddpm", "/data/photos", "/data/predictions", client=client, resume=True)
    """
    from tqdm.auto import tqdm

    from .._outputs._predicting import start_run
    from ..datasets._folders import list_images

    for name, value in (("n_workers", n_workers), ("images_per_task", images_per_task),
                        ("batch_size", batch_size), ("torch_threads", torch_threads),
                        ("pixels_per_task", pixels_per_task)):
        if value is not None and value != "auto" and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    paths = list_images(image_dir, only=only)
    pipeline = _fitted_pipeline(model, trust_pickle)
    writer, todo, summary = start_run(pipeline, paths, out_dir, overlay=overlay, uncertainty=uncertainty,
                                      class_names=class_names, resume=resume, format=format,
                                      probabilities=probabilities)
    if not todo:
        return summary
    banded = {}  # path: (height, width), the images split into bands
    if format == "zarr" and splits_into_bands(pipeline):
        for path in todo:
            size = image_size(path)
            if size is not None and len(plan_bands(size, writer.chunk, pixels_per_task)) > 1:
                banded[path] = size
        todo = [path for path in todo if path not in banded]
    run_start_ns = _file_system_now_ns(writer.out)
    model_source = str(model) if isinstance(model, (str, os.PathLike)) else _safe_bytes(model)

    cluster = None
    if client is None:
        # ":0": any free port, so that two runs on one machine do not fight over the dashboard's 8787.
        cluster = distributed.LocalCluster(n_workers=n_workers or _usable_cores(), threads_per_worker=1,
                                           processes=True, dashboard_address=":0")
        client = distributed.Client(cluster)
    plugin_name = f"sklearn-ddpm-segmenter-{uuid.uuid4().hex}"
    images = {}  # path: _BandedImage
    try:
        threads = _torch_threads_per_host(client) if torch_threads is None else {}
        client.register_plugin(_SegmenterPlugin(model_source, device, batch_size, torch_threads, threads,
                                                trust_pickle),
                               name=plugin_name)
        chunks = [todo[i:i + images_per_task] for i in range(0, len(todo), images_per_task)]
        futures = {client.submit(_predict_task, plugin_name, chunk, writer, run_start_ns, pure=False): chunk
                   for chunk in chunks}
        for path, size in banded.items():
            bands = plan_bands(size, writer.chunk, pixels_per_task)
            images[path] = image = _BandedImage(path, writer.start_store(path, size), size, len(bands))
            for top, bottom in bands:
                future = client.submit(_band_task, plugin_name, path, image.store, top, bottom, size, pure=False)
                futures[future] = (image, top, bottom)
        with tqdm(total=len(todo) + len(images), desc="predict", unit="img", disable=not progress) as bar:
            for future in distributed.as_completed(futures):
                item = futures.pop(future)
                if isinstance(item, tuple):
                    image, top, bottom = item
                    _band_done(image, future, top, bottom, writer, summary)
                    bar.update((bottom - top) / image.size[0])
                elif future.status == "error":
                    # Unexpected (read and prediction errors are caught per image): e.g. a worker that
                    # died on these images again and again (KilledWorker), or a full disk.
                    exc = future.exception()
                    summary.failed += [(str(p), f"{type(exc).__name__}: {exc}") for p in item]
                    bar.update(len(item))
                else:
                    summary.update(future.result())
                    bar.update(len(item))
                future.release()
    finally:
        for image in images.values():
            if image.pending:  # interrupted: its store never gets its name
                shutil.rmtree(image.store, ignore_errors=True)
        try:
            client.unregister_worker_plugin(plugin_name)
        except Exception:  # never registered, or the cluster is gone: nothing left to free
            pass
        if cluster is not None:
            client.close()
            cluster.close()
    return summary


class _BandedImage:
    """An image predicted in band tasks: its temporary store, bands still running, first error."""

    def __init__(self, path, store, size, pending):
        self.path, self.store, self.size = path, store, size
        self.pending, self.error = pending, None


def _band_done(image, future, top, bottom, writer, summary):
    """Record a finished band task; name the image's store when its last band is written."""
    image.pending -= 1
    if future.status == "error" and image.error is None:
        exc = future.exception()
        image.error = f"rows {top}:{bottom}: {type(exc).__name__}: {exc}"
    if image.pending:
        return
    if image.error is None:
        finish_store(image.store, writer.files(image.path)[0])
        summary.written.append(image.path.name)
    else:
        shutil.rmtree(image.store, ignore_errors=True)
        summary.failed.append((str(image.path), image.error))


def _band_task(plugin_name, path, store, top, bottom, size):
    """One band task: predict rows ``top:bottom`` of the image at ``path`` into ``store``."""
    from distributed import get_worker

    from ..datasets._folders import PageReader
    from . import _bands

    pipeline = get_worker().plugins[plugin_name].pipeline
    # As predict_and_write reads an image: the pixels as stored for the model (which maps them by
    # its channels and intensity), their 8-bit RGB view for the store's root.
    reader = PageReader(getattr(pipeline[0], "channels", None), getattr(pipeline[0], "intensity", "8bit"))
    pixels, display = reader.read(path)
    if pixels.shape[:2] != tuple(size):
        raise ValueError(f"{path}: read as {pixels.shape[0]} x {pixels.shape[1]} pixels, but its header said "
                         f"{size[0]} x {size[1]}.")
    write_rows(store, display, _bands.predict_band(pipeline, pixels, top, bottom), top, bottom,
               classes=pipeline[-1].classes_)


def _predict_task(plugin_name, paths, writer, run_start_ns):
    """One task: segment ``paths`` with the worker's model; files this run already wrote are kept."""
    from distributed import get_worker

    pipeline = get_worker().plugins[plugin_name].pipeline
    # A retried task (its first worker died) redoes only what that worker had not written.
    return predict_and_write(pipeline, paths, writer, keep_since_ns=run_start_ns)


class _SegmenterPlugin(distributed.WorkerPlugin):
    """Loads the segmenter once when a worker starts; tasks find it in ``worker.plugins[name].pipeline``.

    A plugin rather than a scattered model: the scheduler gives it to every worker that joins
    later, e.g. one that the nanny restarted after a crash or that an adaptive cluster added, and
    its ``setup`` is where the worker's torch threads are set, before any task runs.
    """

    def __init__(self, model_source, device, batch_size, torch_threads, threads_per_host, trust_pickle=False):
        self.model_source = model_source  # a path, or the safe-format bytes of an in-memory pipeline
        self.trust_pickle = trust_pickle
        self.device, self.batch_size = device, batch_size
        self.torch_threads, self.threads_per_host = torch_threads, threads_per_host
        self.pipeline = None

    def setup(self, worker):
        import torch
        from distributed.comm import get_address_host

        torch.set_num_threads(self.torch_threads or self.threads_per_host.get(get_address_host(worker.address), 1))
        self.pipeline = _load(self.model_source, self.device, self.batch_size, self.trust_pickle)
        # One bar over the whole run is the client's; the workers' extractors stay silent.
        self.pipeline[0].set_params(progress=False)

    def teardown(self, worker):
        self.pipeline = None


def _load(model_source, device, batch_size, trust_pickle=False):
    """The fitted pipeline of a path or of safe-format bytes, through the checks of ``load_segmenter``."""
    from ..segmenter import load_segmenter

    if isinstance(model_source, str):
        return load_segmenter(model_source, device=device, batch_size=batch_size, trust_pickle=trust_pickle)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "segmenter.skddpm"
        path.write_bytes(model_source)
        return load_segmenter(path, device=device, batch_size=batch_size)


def _fitted_pipeline(model, trust_pickle=False):
    """The pipeline of ``model`` on this process, for its class names and ensemble size."""
    from sklearn.pipeline import Pipeline

    from ..segmenter import load_segmenter

    if isinstance(model, (str, os.PathLike)):
        # On the CPU: the client only reads the model's classes; the workers run it.
        return load_segmenter(model, device="cpu", trust_pickle=trust_pickle)
    if not isinstance(model, Pipeline):
        raise TypeError(f"model must be a path to a file saved by `sklearn-ddpm fit` or a fitted Pipeline, "
                        f"got {type(model).__name__}.")
    return model


def _safe_bytes(pipeline):
    from ..io import dumps_model

    return dumps_model(pipeline)


def _file_system_now_ns(folder):
    """The output file system's clock now: the mtime of a file created and removed at once.

    Compared with the outputs' mtimes, which the same file system sets, so the clocks of the
    client and of the workers do not matter.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sklearn-ddpm-run-", suffix=".tmp")
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(tmp)


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _torch_threads_per_host(client):
    """``{host: torch threads}``: each machine's cores divided among the task threads of its workers."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_usable_cores)
    task_threads = Counter()
    for info in workers.values():
        task_threads[info["host"]] += info["nthreads"]
    return {info["host"]: max(1, cores[address] // task_threads[info["host"]])
            for address, info in workers.items() if address in cores}
