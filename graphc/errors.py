"""Errors a user can cause, and where in the user's code they came from.

Every error is a `GraphcError` whose message names the op (or placeholder),
the shapes or dtypes involved, and the user's file and line. Op type rules
raise the bare message; the graph adds the op's name and the line.
"""
import functools
import linecache
import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# graphc, plus passes/ and runtime/ when running from a source checkout.
_INTERNAL_DIRS = tuple(
    os.path.join(os.path.abspath(d), "")
    for d in (_PACKAGE_DIR,
              os.path.join(_PACKAGE_DIR, os.pardir, "passes"),
              os.path.join(_PACKAGE_DIR, os.pardir, "runtime")))


class SourceLocation:
    """file:line of the user's call that created a node (or made a call)."""

    __slots__ = ("file", "line")

    def __init__(self, file, line):
        self.file, self.line = file, line

    def __str__(self):
        code = linecache.getline(self.file, self.line).strip()
        return f"{self.file}:{self.line}" + (f": {code}" if code else "")

    def __repr__(self):
        return f"SourceLocation({self.file!r}, {self.line})"


def user_location():
    """The innermost stack frame outside graphc: the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return SourceLocation(filename, frame.f_lineno)
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=4096)
def _is_internal(filename):
    return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


class GraphcError(Exception):
    """Base class of every error graphc raises because of its input."""

    def __init__(self, message, op=None, loc=None):
        self.message, self.op, self.loc = message, op, loc
        super().__init__(self._text())

    def _text(self):
        text = f"{self.op}: {self.message}" if self.op else self.message
        if self.loc is not None:
            text += f"\n  at {self.loc}"
        return text

    def located(self, op, loc):
        """Fill in the op and the user's line where the raiser did not know them."""
        if self.op is None:
            self.op = op
        if self.loc is None:
            self.loc = loc
        self.args = (self._text(),)
        return self


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit the op (including bad axes and indices)."""


class DtypeError(GraphcError, TypeError):
    """A dtype the op does not accept."""


class ArgumentError(GraphcError, TypeError, ValueError):
    """An argument that is not a tensor and that the op, module or function does not
    accept: a size, stride or count that is not a positive int, a flag or option of the
    wrong kind. Both a TypeError and a ValueError, so code written for PyTorch's
    errors (which raise either) catches it."""


class FeedError(GraphcError, ValueError):
    """A missing, unknown or malformed value fed to an executable."""


class GradError(GraphcError):
    """A gradient that cannot be built (non-scalar output, no rule)."""


class CompileError(GraphcError):
    """A compile call that cannot be honoured (bad updates, unknown device)."""


class RuntimeFailure(GraphcError, RuntimeError):
    """An op failed while running on concrete values (e.g. an index out of range)."""
