"""A progress bar over the rows of one image, for the writers that predict it band by band."""


def counted_rows(bands, height, desc, enabled=True, delay=1.0):
    """Yield ``bands`` (``(top, bottom, outputs)``) while a bar counts their rows out of ``height``.

    One large image is one step of the command's bar over images: without this, a 10,000²
    image shows ``0/1`` for an hour. The bar appears only after ``delay`` seconds (small images
    never show it) and is removed when the image is done (``leave=False``), so a folder of many
    images keeps one bar.

    Parameters
    ----------
    bands : iterable of (top, bottom, outputs)
    height : int
        Rows of the image.
    desc : str
        The bar's label (the image's name).
    enabled : bool, default=True
    delay : float, default=1.0
    """
    from tqdm.auto import tqdm

    with tqdm(total=int(height), desc=desc, unit="row", leave=False, delay=delay, disable=not enabled) as bar:
        for band in bands:
            bar.update(band[1] - band[0])  # counted when computed, before it is written
            yield band
