"""The ``fit``, ``predict`` and ``evaluate`` sub-commands: segmentation on the user's own folders.

``fit`` saves the scikit-learn :class:`~sklearn.pipeline.Pipeline` of
:func:`sklearn_ddpm.make_segmenter` with joblib, so the file is as usable from Python
(:func:`sklearn_ddpm.load_segmenter`) as from the command line. The pipeline also carries
``class_names_`` (list or None), ``versions_`` (package versions at fit time) and
``training_files_``.

Modules: ``_arguments`` (parsers, help and examples), ``_commands`` (what each command does),
``_writers`` (the files and the table the commands write).
"""

from ._arguments import add_batch_size_argument, register

__all__ = ["add_batch_size_argument", "register"]
