"""The error every gc.data loader and gc.metrics function raises for bad input."""
from graphc.errors import GraphcError


class DataError(GraphcError, ValueError):
    """Data that cannot be used: a missing, empty, truncated or malformed file,
    a label out of range, arrays of different lengths, an unsupported format.

    The message names the file (and line, where there is one) and what is wrong.
    """
