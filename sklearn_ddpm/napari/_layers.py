"""What the widget reads from and writes to napari layers, as plain numpy (testable without Qt).

An image layer holds one image (``(H, W, 3)`` RGB or ``(H, W)`` gray) or a stack of them
(``(N, H, W, 3)`` or ``(N, H, W)``); its Labels layer has the same shape without the colour axis,
0 = unlabelled and ``k + 1`` = class ``k`` (napari's convention, see
:func:`~sklearn_ddpm.interactive.napari_to_mask`).
"""

import numpy as np

#: Default class colours (matplotlib's tab10), class k gets colour k modulo 10.
DEFAULT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

#: ``layer.metadata`` key that marks the layers the widget made, with their role as value.
ROLE_KEY = "sklearn_ddpm_role"
#: ``layer.metadata`` key of the image layer a widget-made layer belongs to.
SOURCE_KEY = "sklearn_ddpm_source"


def split_image_layer(data, rgb):
    """The images of an image layer's data and whether they are a stack.

    Parameters
    ----------
    data : array-like
        ``layer.data``: ``(H, W, 3|4)`` with ``rgb``, ``(H, W)`` gray, or a stack of either.
    rgb : bool
        ``layer.rgb``.

    Returns
    -------
    images : list of ndarray
        ``(H, W, 3|4)`` or ``(H, W)`` each.
    stacked : bool
        Whether the layer is a stack (its first axis indexes the images).

    Raises
    ------
    ValueError
        For data of more than one stack axis (e.g. time and depth).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.napari._layers import split_image_layer
    >>> images, stacked = split_image_layer(np.zeros((4, 32, 48, 3), np.uint8), rgb=True)
    >>> len(images), images[0].shape, stacked
    (4, (32, 48, 3), True)
    """
    data = np.asarray(data)
    plane_ndim = 3 if rgb else 2
    if data.ndim == plane_ndim:
        return [data], False
    if data.ndim == plane_ndim + 1:
        return list(data), True
    raise ValueError(f"an image layer of shape {data.shape} ({'RGB' if rgb else 'gray'}) holds neither one image "
                     "nor a stack of images (N, H, W[, 3]); open each stack as its own layer.")


def labels_shape(data, rgb):
    """Shape of the Labels layer that goes with an image layer's data: the colour axis dropped.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.napari._layers import labels_shape
    >>> labels_shape(np.zeros((4, 32, 48, 3)), rgb=True)
    (4, 32, 48)
    """
    shape = np.shape(data)
    return tuple(shape[:-1]) if rgb else tuple(shape)


def label_planes(labels_data, stacked):
    """The ``(H, W)`` planes of a Labels layer's data, one per image of its image layer."""
    labels_data = np.asarray(labels_data)
    return list(labels_data) if stacked else [labels_data]


def stack_planes(planes, stacked):
    """The inverse of :func:`label_planes`: a layer's data from its per-image planes."""
    return np.stack(planes) if stacked else planes[0]


def suggestion_rectangle(bbox, plane, stacked):
    """The four corners of a suggestion's box as a napari Shapes rectangle (world = pixel coordinates).

    Parameters
    ----------
    bbox : tuple of int
        ``(y0, x0, y1, x1)``, end exclusive (:class:`~sklearn_ddpm.interactive.Suggestion`).
    plane : int
        The image's index in its layer's stack.
    stacked : bool
        Whether the layer is a stack (the corners then carry the stack index first).

    Returns
    -------
    ndarray of shape (4, 2) or (4, 3)

    Examples
    --------
    >>> from sklearn_ddpm.napari._layers import suggestion_rectangle
    >>> suggestion_rectangle((2, 3, 5, 7), plane=1, stacked=True).tolist()[0]
    [1.0, 1.5, 2.5]
    """
    y0, x0, y1, x1 = bbox
    # Pixel (y, x) covers [y - 0.5, y + 0.5] in napari's world: the box encloses its pixels.
    corners = np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float) - 0.5
    if stacked:
        corners = np.hstack([np.full((4, 1), float(plane)), corners])
    return corners


def hex_to_rgba(color):
    """``"#rrggbb"`` as RGBA floats in [0, 1]."""
    color = color.lstrip("#")
    if len(color) != 6:
        raise ValueError(f"colour {color!r} is not of the form #rrggbb.")
    return np.array([int(color[i:i + 2], 16) / 255 for i in (0, 2, 4)] + [1.0])


def label_color_dict(colors):
    """napari ``DirectLabelColormap`` colours: 0 (unlabelled) transparent, label ``k + 1`` the colour of class ``k``.

    Examples
    --------
    >>> from sklearn_ddpm.napari._layers import label_color_dict
    >>> label_color_dict(["#ff0000"])[1].tolist()
    [1.0, 0.0, 0.0, 1.0]
    """
    colors_by_label = {None: np.zeros(4), 0: np.zeros(4)}
    colors_by_label.update({k + 1: hex_to_rgba(color) for k, color in enumerate(colors)})
    return colors_by_label
