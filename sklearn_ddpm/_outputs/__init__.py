"""Prediction outputs on disk: segmenting a batch of image files and writing label maps, overlays
and uncertainty maps atomically. Shared by ``sklearn-ddpm predict`` and the Dask path
(:mod:`sklearn_ddpm.distributed`), so both write the very same files."""
