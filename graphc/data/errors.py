"""The error every gc.data loader and gc.metrics function raises for bad input."""
from graphc.errors import GraphcError, user_location


class DataError(GraphcError, ValueError):
    """Data that cannot be used: a missing, empty, truncated or malformed file,
    a label out of range, arrays of different lengths, an unsupported format.

    The message names the file (and line, where there is one) and what is wrong.
    Unless the raiser passes `loc`, the error carries the user's line: the call
    into gc.data (or gc.metrics) that failed, however deep the check was made.
    """

    def __init__(self, message, op=None, loc=None):
        super().__init__(message, op=op, loc=user_location() if loc is None else loc)
