"""The five dtypes graphc knows, and how they combine.

Promotion follows the category order bool < integer < floating; inside a
category the wider type wins. Unlike NumPy, an integer tensor combined with
a float tensor keeps the float's dtype (as PyTorch does), and Python scalars
are weak: `x * 2.0` keeps x's float32, `int_tensor * 2.5` is float32.
"""
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
    """The dtype a lone Python scalar gets (weak: see `weak_scalar_dtype`)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return DEFAULT_INT
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
