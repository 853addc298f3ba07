"""The training schedule for any batch size: the reference's at batch 64, and a large-batch rule above.

The reference trains with Adam at lr 1e-3 and batch 64, lets every member run 4 epochs and then
stops it once its batch loss has not improved for 50 iterations. Larger batches take fewer,
larger steps per epoch; kept at those settings they stop long before they have learned as much
(batch 2048 lost 1.3 mIoU points on Weizmann). The rule for a batch ``B`` above 64, with
``s = B / 64``:

- ``lr = 1e-3 * sqrt(s)`` (square-root scaling, the usual rule for Adam);
- the first epoch at which a member may stop is ``4 * sqrt(s)`` (rounded): with ``1/s`` as many
  steps per epoch of ``sqrt(s)`` times the size, members take ``lr x steps`` as large a total
  step as at batch 64 before the stop rule looks at them ("train longer", Hoffer et al., 2017);
- the patience is kept in pixels, ``50 / s`` iterations (at least 1).

Measured in ``benchmarks/weizmann_levers.py`` (``benchmarks/results/weizmann_levers_n20.json``).
"""

REFERENCE_BATCH = 64
REFERENCE_LR = 1e-3
REFERENCE_PATIENCE = 50
REFERENCE_MIN_EPOCHS = 4


def batch_schedule(batch_size):
    """``(lr, patience, min_epochs)`` for ``batch_size``: the reference's up to batch 64, scaled above.

    Examples
    --------
    >>> batch_schedule(64)
    (0.001, 50, 4)
    >>> lr, patience, min_epochs = batch_schedule(2048)
    >>> round(lr, 5), patience, min_epochs
    (0.00566, 2, 23)
    """
    scale = max(1.0, batch_size / REFERENCE_BATCH)
    return (
        REFERENCE_LR * scale**0.5,
        max(1, round(REFERENCE_PATIENCE / scale)),
        round(REFERENCE_MIN_EPOCHS * scale**0.5),
    )
