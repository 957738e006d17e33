"""The five dtypes graphc knows, and how they combine.

Promotion follows the category order bool < integer < floating; inside a
category the wider type wins. Unlike NumPy, an integer tensor combined with
a float tensor keeps the float's dtype (as PyTorch does), and Python scalars
are weak: `x * 2.0` keeps x's float32, `int_tensor * 2.5` is float32.
"""
import numbers

import numpy as np

from graphc.errors import DtypeError

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED = (float32, float64, int32, int64, bool_)
DEFAULT_FLOAT = float32
DEFAULT_INT = int64


def as_dtype(value):
    """np.dtype for a name, type or dtype; DtypeError if graphc does not support it."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise DtypeError(f"{value!r} is not a dtype; use one of {names()}") from None
    if dtype not in SUPPORTED:
        raise DtypeError(f"dtype {dtype} is not supported; use one of {names()}")
    return dtype


def names():
    return ", ".join(d.name for d in SUPPORTED)


def is_float(dtype):
    return dtype.kind == "f"


def is_int(dtype):
    return dtype.kind == "i"


def is_bool(dtype):
    return dtype.kind == "b"


_CATEGORY = {"b": 0, "i": 1, "f": 2}


def promote(*dtypes):
    """Result dtype of combining tensors of these dtypes."""
    top = max(_CATEGORY[d.kind] for d in dtypes)
    same = [d for d in dtypes if _CATEGORY[d.kind] == top]
    return max(same, key=lambda d: d.itemsize)


def of_python_scalar(value):
    """The dtype a lone Python scalar gets (weak: see `weak_scalar_dtype`);
    DtypeError for a complex one."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return DEFAULT_INT
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise DtypeError(f"complex value {value!r} is not supported: graphc has no complex "
                         f"dtype (use one of {names()})")
    return DEFAULT_FLOAT


def weak_scalar_dtype(value, partner):
    """The dtype a Python scalar takes next to a tensor of dtype `partner`."""
    scalar = of_python_scalar(value)
    if _CATEGORY[scalar.kind] <= _CATEGORY[partner.kind]:
        return partner
    return DEFAULT_FLOAT if scalar.kind == "f" else scalar


def of_array(array):
    """The dtype a NumPy array keeps as a graphc constant or variable."""
    dtype = array.dtype
    if dtype in SUPPORTED:
        return dtype
    if dtype.kind == "f":
        return float32           # float16 and friends compute in float32
    if dtype.kind in "iu":
        return int64
    raise DtypeError(f"arrays of dtype {dtype} are not supported; use one of {names()}")


def convert(values, dtype):
    """An owned C-ordered array of `values` (a scalar or an array) as `dtype`; DtypeError where
    NumPy would silently wrap around or make garbage: integers outside an integer
    dtype's range, NaN or infinite floats converted to an integer dtype, and finite
    floats past a narrower float dtype's range (float64 1e39 as float32: inf)."""
    check_fits(values, dtype)
    with np.errstate(over="ignore"):        # refused just below, by name
        converted = np.array(values, dtype=dtype, order="C")
    check_no_overflow(values, converted)
    return converted


def check_fits(values, dtype):
    """DtypeError unless every value converts to integer `dtype` without wrapping
    (float and bool dtypes hold every value they are given, rounded)."""
    array = values if isinstance(values, np.ndarray) else None
    if not is_int(dtype) or (array is not None and (array.size == 0 or
                                                    np.can_cast(array.dtype, dtype))):
        return
    bound = 2 ** (8 * dtype.itemsize - 1)           # the range is [-bound, bound)
    low, high = (array.min(), array.max()) if array is not None else (values, values)
    if isinstance(low, (float, np.floating)):
        if not (np.isfinite(low) and np.isfinite(high)):
            raise DtypeError(f"{dtype} cannot hold {_describe(values)} (NaN or infinity)")
    else:
        low, high = int(low), int(high)       # exact, also for uint64
    if not -bound <= low <= high < bound:
        raise DtypeError(f"{dtype} cannot hold {_describe(values)} "
                         f"(its range is [{-bound}, {bound - 1}])")


def check_no_overflow(values, converted):
    """DtypeError if converting `values` to the float array `converted` made a finite
    value infinite (NaN and infinities themselves pass: they are values, not garbage)."""
    if converted.dtype.kind != "f" or np.isfinite(converted).all():
        return
    source = np.asarray(values)
    if source.dtype.kind == "f" and (np.isinf(converted) & np.isfinite(source)).any():
        raise DtypeError(f"{converted.dtype} cannot hold {_describe(source)} (its largest "
                         f"finite value is {np.finfo(converted.dtype).max:.7g})")


def _describe(values):
    if np.ndim(values) == 0:
        return f"value {np.asarray(values).item()!r}"
    return f"an array of {values.dtype} values from {values.min()} to {values.max()}"
