"""Pictures of label maps: a colour palette, coloured masks and overlays on the photo.

Everything here returns ``uint8`` RGB arrays built with NumPy and Pillow, so it works without
matplotlib; matplotlib is imported only to colour uncertainty maps.
"""

import numpy as np

IGNORE_COLOR = (255, 255, 255)


def label_palette(n_colors=256):
    """The PASCAL VOC colour map: distinct colours for class indices, black for class 0.

    It is the palette most segmentation tools and datasets use for label PNGs, so masks written
    with it look familiar and palette-aware viewers show the classes in colour.

    Parameters
    ----------
    n_colors : int, default=256

    Returns
    -------
    ndarray of shape (n_colors, 3), dtype uint8

    Examples
    --------
    >>> from sklearn_ddpm.plotting import label_palette
    >>> label_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    palette = np.zeros((n_colors, 3), dtype=np.uint8)
    for k in range(n_colors):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[k] = (r, g, b)
    return palette


def label_to_color(labels, palette=None, ignore_index=255):
    """Colour a label map.

    Parameters
    ----------
    labels : array-like of shape (H, W)
        Non-negative integer class indices.
    palette : array-like of shape (n_colors, 3), default=None
        Colour of each class; :func:`label_palette` by default (repeating beyond 255 classes).
    ignore_index : int or None, default=255
        Pixels with this value are white.

    Returns
    -------
    ndarray of shape (H, W, 3), dtype uint8

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.plotting import label_to_color
    >>> label_to_color(np.array([[0, 1]])).tolist()
    [[[0, 0, 0], [128, 0, 0]]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D label map, got shape {labels.shape}.")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}.")
    labels = labels.astype(np.int64)
    if (labels < 0).any():
        raise ValueError("labels must be non-negative.")
    palette = label_palette() if palette is None else np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    colored = palette[labels % len(palette)]
    if ignore_index is not None:
        colored[labels == ignore_index] = IGNORE_COLOR
    return colored


def uncertainty_to_color(uncertainty, vmax=None, cmap="magma"):
    """Colour an uncertainty map with a matplotlib colour map (0 = dark, ``vmax`` = bright).

    Parameters
    ----------
    uncertainty : array-like of shape (H, W)
        Non-negative values, e.g. the Jensen-Shannon divergence of
        :meth:`MLPEnsembleClassifier.predict_uncertainty`.
    vmax : float, default=None
        Value mapped to the brightest colour; the map's maximum when None.
    cmap : str, default="magma"

    Returns
    -------
    ndarray of shape (H, W, 3), dtype uint8
        The coloured map, ready for ``PIL.Image.fromarray``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.plotting import uncertainty_to_color
    >>> uncertainty_to_color(np.zeros((2, 3))).shape
    (2, 3, 3)
    """
    import matplotlib

    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    if uncertainty.ndim != 2:
        raise ValueError(f"uncertainty must be a 2-D map, got shape {uncertainty.shape}.")
    if not np.isfinite(uncertainty).all():
        raise ValueError("uncertainty contains NaN or infinite values.")
    vmax = float(uncertainty.max()) if vmax is None else float(vmax)
    scaled = uncertainty / vmax if vmax > 0 else np.zeros_like(uncertainty)
    rgba = matplotlib.colormaps[cmap](np.clip(scaled, 0, 1))
    return np.round(rgba[..., :3] * 255).astype(np.uint8)


def overlay(image, labels, uncertainty=None, class_names=None, alpha=0.5, palette=None, ignore_index=255):
    """Blend a label map over its image, optionally with an uncertainty panel and a legend.

    Parameters
    ----------
    image : array-like of shape (H, W, 3), uint8
        The photo.
    labels : array-like of shape (H, W)
        Class indices, the same size as ``image``.
    uncertainty : array-like of shape (H, W), default=None
        When given, a heat map of it is placed to the right of the overlay (needs matplotlib).
    class_names : list of str, default=None
        When given, a legend strip below the picture names the classes present in ``labels``.
    alpha : float, default=0.5
        Opacity of the label colours; class 0 (usually background) and ``ignore_index`` pixels are
        left uncoloured.
    palette : array-like of shape (n_colors, 3), default=None
        See :func:`label_to_color`.
    ignore_index : int, default=255

    Returns
    -------
    ndarray of shape (H', W', 3), dtype uint8
        ``(H, W, 3)`` without uncertainty and legend; wider and taller with them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.plotting import overlay
    >>> image = np.full((4, 6, 3), 200, dtype=np.uint8)
    >>> labels = np.zeros((4, 6), dtype=int); labels[:, 3:] = 1
    >>> overlay(image, labels).shape
    (4, 6, 3)
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got shape {image.shape} and dtype {image.dtype}.")
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels have shape {labels.shape} but the image is {image.shape[:2]}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    colors = label_to_color(labels, palette, ignore_index).astype(np.float32)
    painted = ((labels != 0) & (labels != ignore_index))[..., None]
    blended = np.where(painted, (1 - alpha) * image + alpha * colors, image)
    picture = np.round(blended).astype(np.uint8)
    if uncertainty is not None:
        uncertainty = np.asarray(uncertainty)
        if uncertainty.shape != labels.shape:
            raise ValueError(f"uncertainty has shape {uncertainty.shape} but the labels are {labels.shape}.")
        gap = np.full((picture.shape[0], max(2, picture.shape[1] // 50), 3), 255, np.uint8)
        picture = np.concatenate([picture, gap, uncertainty_to_color(uncertainty)], axis=1)
    if class_names is not None:
        present = [int(k) for k in np.unique(labels) if k != ignore_index]
        picture = np.concatenate([picture, _legend(picture.shape[1], present, class_names, palette)], axis=0)
    return picture


def _legend(width, classes, class_names, palette):
    from PIL import Image, ImageDraw, ImageFont

    palette = label_palette() if palette is None else np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    font = ImageFont.load_default()
    row_height, swatch, pad = 16, 12, 4
    from .datasets._folders import default_class_names

    names = default_class_names(max(classes, default=-1) + 1, class_names)
    entries = [(k, names[k]) for k in classes]
    # Lay the entries out left to right, wrapping to a new row when the picture is too narrow.
    rows, row, x = [], [], pad
    for k, name in entries:
        entry_width = swatch + pad + int(font.getlength(name)) + 3 * pad
        if row and x + entry_width > width:
            rows.append(row)
            row, x = [], pad
        row.append((k, name, x))
        x += entry_width
    rows.append(row)
    strip = Image.new("RGB", (width, row_height * len(rows) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        top = pad + r * row_height
        for k, name, x in row:
            draw.rectangle([x, top, x + swatch - 1, top + swatch - 1], fill=tuple(int(c) for c in palette[k % len(palette)]),
                           outline=(0, 0, 0))
            draw.text((x + swatch + pad, top), name, fill=(0, 0, 0), font=font)
    return np.asarray(strip, dtype=np.uint8)
