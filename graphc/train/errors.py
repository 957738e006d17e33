"""The errors gc.train raises for input a user can get wrong."""
from graphc.errors import GraphcError


class TrainError(GraphcError, ValueError):
    """A loader, a model or labels the trainer cannot use: the message names the
    batch, the array and what was expected."""


class CheckpointError(TrainError):
    """A checkpoint that cannot be read or does not fit this trainer (missing,
    unexpected or mis-shaped variables, another optimizer)."""
