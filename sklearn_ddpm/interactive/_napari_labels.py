"""The two conventions for "unlabelled" and the conversion between them.

The package's masks (API and CLI) hold class ``k`` as ``k`` and mark unlabelled pixels with
:data:`UNLABELLED` (255). A napari ``Labels`` layer paints label 0 as "nothing", so the napari
plugin, and label images exported from napari, draw class ``k`` as ``k + 1``.
"""

import numpy as np

#: The value that marks an unlabelled pixel in the package's masks (``ignore_index``).
UNLABELLED = 255
#: Classes a uint8 mask can hold next to :data:`UNLABELLED`: 0..254.
MAX_CLASSES = UNLABELLED


def napari_to_mask(layer_data):
    """A napari Labels layer's data (0 = unlabelled, ``k + 1`` = class ``k``) as a package mask.

    Parameters
    ----------
    layer_data : array-like of int, shape (H, W)
        The ``data`` of a napari ``Labels`` layer, or a label image exported from one.

    Returns
    -------
    ndarray of shape (H, W), uint8
        Class indices, :data:`UNLABELLED` (255) where nothing is painted.

    Raises
    ------
    ValueError
        If the data is not 2-D integers, or holds negative labels or labels above 255 (class 254).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.interactive import napari_to_mask
    >>> napari_to_mask(np.array([[0, 1, 2]]))
    array([[255,   0,   1]], dtype=uint8)
    """
    data = np.asarray(layer_data)
    _check_integer_2d(data, "napari labels")
    if data.size and (data.min() < 0 or data.max() > MAX_CLASSES):
        bad = np.unique(data[(data < 0) | (data > MAX_CLASSES)])[:5].tolist()
        raise ValueError(f"napari labels {bad} are outside 0..{MAX_CLASSES} (0 = unlabelled, k + 1 = class k, "
                         f"at most {MAX_CLASSES} classes).")
    mask = np.full(data.shape, UNLABELLED, np.uint8)
    painted = data > 0
    mask[painted] = (data[painted] - 1).astype(np.uint8)
    return mask


def mask_to_napari(mask):
    """A package mask (255 = unlabelled, ``k`` = class ``k``) as napari Labels data (0 = unlabelled).

    Parameters
    ----------
    mask : array-like of int, shape (H, W)
        Class indices 0..254, :data:`UNLABELLED` (255) for unlabelled pixels.

    Returns
    -------
    ndarray of shape (H, W), int32
        Label ``k + 1`` for class ``k``, 0 where unlabelled (napari's Labels layers use int32 data).

    Raises
    ------
    ValueError
        If the mask is not 2-D integers or holds values outside 0..255.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ddpm.interactive import mask_to_napari
    >>> mask_to_napari(np.array([[255, 0, 1]], np.uint8))
    array([[0, 1, 2]], dtype=int32)
    """
    mask = np.asarray(mask)
    _check_integer_2d(mask, "mask")
    if mask.size and (mask.min() < 0 or mask.max() > UNLABELLED):
        bad = np.unique(mask[(mask < 0) | (mask > UNLABELLED)])[:5].tolist()
        raise ValueError(f"mask values {bad} are outside 0..{MAX_CLASSES - 1} and {UNLABELLED} (unlabelled).")
    labels = mask.astype(np.int32) + 1
    labels[mask == UNLABELLED] = 0
    return labels


def _check_integer_2d(array, what):
    if array.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H, W), got shape {array.shape}.")
    if array.dtype == bool:
        return
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integers, got dtype {array.dtype}.")
