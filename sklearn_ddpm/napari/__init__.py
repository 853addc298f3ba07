"""The napari plugin: a dock widget that is a thin view on :class:`~sklearn_ddpm.interactive.InteractiveSegmenter`.

Install it with ``pip install 'sklearn-ddpm[napari]'``; napari finds it through the npe2 manifest
``napari.yaml`` beside this file (menu *Plugins > Interactive segmentation*). See ``docs/napari.md``.

Nothing here imports napari or Qt: the widget module (``_widget``) does, and napari imports it only
when the widget is opened, so the package itself never needs them.
"""
