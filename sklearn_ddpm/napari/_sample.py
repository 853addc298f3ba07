"""The bundled Weizmann horses as napari sample data (*File > Open Sample > sklearn-ddpm*)."""


def horses():
    """The ten ``train`` horses of :func:`~sklearn_ddpm.datasets.load_horses`, one RGB image layer each.

    The images have different sizes, so they cannot be one stack; the widget's "all image layers"
    setting segments them together.

    Returns
    -------
    list of (ndarray, dict, str)
        napari ``LayerDataTuple`` s: image, layer keyword arguments, ``"image"``.
    """
    from ..datasets import load_horses

    data = load_horses("train")
    return [(image, {"name": name, "rgb": True, "visible": i == 0}, "image")
            for i, (image, name) in enumerate(zip(data.images, data.names))]
