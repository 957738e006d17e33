"""Checks of the arguments of gc.nn's functions and modules that are not tensors
(sizes, strides, paddings, probabilities): each returns the value as Python ints or
a float, or raises an ArgumentError naming the function or module (`op`), the
argument and the user's line. NumPy integers are accepted wherever ints are."""
import numbers

from graphc.errors import ArgumentError, GraphcError, user_location
from graphc.ops.rules import is_integer


def _refuse(message, op):
    raise ArgumentError(message, op=op, loc=user_location())


def _as_int(value):
    """A Python or NumPy integer (not a bool) as a Python int, else None."""
    return int(value) if is_integer(value) else None


def _check_minimum(ints, value, name, op, minimum):
    if minimum is not None and any(n < minimum for n in ints):
        bound = {0: "non-negative", 1: "positive"}.get(minimum, f">= {minimum}")
        _refuse(f"{name} must be {bound}, got {value!r}", op)


def int_argument(value, name, op, minimum=None):
    """`value` as a Python int (NumPy integers accepted) >= minimum, else an
    ArgumentError naming `op` and the argument."""
    number = _as_int(value)
    if number is None:
        _refuse(f"{name} must be an int, got {value!r}", op)
    _check_minimum([number], value, name, op, minimum)
    return number


def pair_argument(value, name, op, minimum=None):
    """An int or a pair of ints, each >= minimum, as a tuple of two Python ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ints = tuple(_as_int(v) for v in items)
    if len(ints) != 2 or None in ints:
        _refuse(f"{name} must be an int or a pair of ints, got {value!r}", op)
    _check_minimum(ints, value, name, op, minimum)
    return ints


def single_argument(value, name, op, minimum=None):
    """An int or a sequence of one int, >= minimum, as a tuple of one Python int
    (PyTorch's 1-d conv arguments)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    ints = tuple(_as_int(v) for v in items)
    if len(ints) != 1 or None in ints:
        _refuse(f"{name} must be an int or a tuple of one int, got {value!r}", op)
    _check_minimum(ints, value, name, op, minimum)
    return ints


def shape_argument(value, name, op):
    """An int or a sequence of ints, each >= 0, as a tuple of Python ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    ints = tuple(_as_int(v) for v in items)
    if None in ints:
        _refuse(f"{name} must be an int or a sequence of ints, got {value!r}", op)
    _check_minimum(ints, value, name, op, 0)
    return ints


def probability_argument(value, name, op):
    """A real number in [0, 1], as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not 0 <= value <= 1:
        _refuse(f"{name} must be a probability in [0, 1], got {value!r}", op)
    return float(value)


def non_negative_number(value, name, op):
    """A finite real number >= 0, as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not 0 <= value < float("inf"):
        _refuse(f"{name} must be a finite number >= 0, got {value!r}", op)
    return float(value)


def conv_arguments(op, stride, padding, dilation, groups, per_axis=None):
    """A conv's stride and dilation (positive), padding (non-negative, or 'valid' or
    'same', left to resolve) as one int per spatial axis, read by `per_axis`
    (pair_argument for conv2d, single_argument for conv1d), and groups (positive)."""
    per_axis = per_axis or pair_argument
    stride = per_axis(stride, "stride", op, minimum=1)
    dilation = per_axis(dilation, "dilation", op, minimum=1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            what = "a pair of ints" if per_axis is pair_argument else "a tuple of one int"
            _refuse(f"padding must be 'valid', 'same', an int or {what}, got {padding!r}", op)
    else:
        padding = per_axis(padding, "padding", op, minimum=0)
    return stride, padding, dilation, int_argument(groups, "groups", op, minimum=1)


def pool_arguments(op, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Pooling's kernel, stride (None: the kernel), padding and dilation as int pairs,
    checked as PyTorch does: positive kernel, stride and dilation, and padding between
    0 and half the kernel."""
    if ceil_mode:
        raise GraphcError("ceil_mode=True is not supported", op=op, loc=user_location())
    kernel = pair_argument(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None else pair_argument(stride, "stride", op, minimum=1)
    padding = pair_argument(padding, "padding", op, minimum=0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        _refuse(f"padding {padding} must be at most half the kernel {kernel}", op)
    return kernel, stride, padding, pair_argument(dilation, "dilation", op, minimum=1)


def divisor_argument(divisor_override, op):
    """avg_pool2d's divisor_override: None or a positive int."""
    if divisor_override is None:
        return None
    return int_argument(divisor_override, "divisor_override", op, minimum=1)
