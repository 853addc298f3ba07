"""Test-time flip augmentation: the prediction of an image and of its mirror, averaged."""


def average_mirrored(probabilities, mirrored_probabilities, width):
    """Average per-pixel probabilities with those of the mirrored image, mapped back.

    Parameters
    ----------
    probabilities : torch.Tensor of shape (height * width, ...)
        Pixels of the image in raster order (e.g. members' probabilities ``(n_pixels, M, K)``).
    mirrored_probabilities : torch.Tensor of the same shape
        The same quantity computed on the horizontally flipped image, in its own raster order.
    width : int
        Image width, to map mirrored pixel ``(y, width - 1 - x)`` back onto ``(y, x)``.

    Returns
    -------
    torch.Tensor
        ``(probabilities + unflipped mirrored_probabilities) / 2``, same shape.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[1.0], [0.0]])  # a 1 x 2 image
    >>> average_mirrored(p, torch.tensor([[0.0], [1.0]]), width=2).flatten().tolist()
    [1.0, 0.0]
    """
    rest = mirrored_probabilities.shape[1:]
    unflipped = mirrored_probabilities.reshape(-1, width, *rest).flip(1).reshape(-1, *rest)
    return (probabilities + unflipped) / 2
