"""skorch nets whose training a user's Ctrl-C really stops.

skorch's ``partial_fit`` ends training quietly on any ``KeyboardInterrupt`` — its way to stop
early — and then reports a normal end: a Ctrl-C would leave a half-trained model that looks
fitted (and that ``sklearn-ddpm fit`` then saved). Here only :class:`EarlyStop` ends training
that way; a user's interrupt comes out of ``partial_fit`` as :class:`TrainingInterrupted`, which
the estimators turn back into a ``KeyboardInterrupt`` once their half-fitted state is removed.
"""

from skorch import NeuralNet


class EarlyStop(KeyboardInterrupt):
    """Raised by a callback to end training early (skorch swallows it, as any KeyboardInterrupt)."""


class TrainingInterrupted(Exception):
    """A user's ``KeyboardInterrupt`` during training, carried past skorch's ``except KeyboardInterrupt``.

    Not a ``KeyboardInterrupt`` itself, so that skorch lets it through.
    """


class InterruptibleNet(NeuralNet):
    """A ``NeuralNet`` whose ``fit``/``partial_fit`` raise :class:`TrainingInterrupted` on a user's Ctrl-C."""

    def fit_loop(self, X, y=None, **fit_params):
        try:
            return super().fit_loop(X, y, **fit_params)
        except EarlyStop:
            raise
        except KeyboardInterrupt as exc:
            raise TrainingInterrupted("training was interrupted") from exc
