"""`Tensor`: the symbolic value users hold, with NumPy's operators and methods.

A Tensor is a handle on one graph node; each node has exactly one Tensor, so
Tensors can be dict keys (`updates={w: ...}`) while `==` builds a comparison.
"""
import numbers

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, GraphcError, user_location
from graphc.graph import default_graph, format_shape
from graphc.ops.registry import OPS


class Tensor:
    __slots__ = ("node", "__weakref__")
    __array_ufunc__ = None          # `ndarray * tensor` defers to Tensor.__rmul__
    __hash__ = object.__hash__

    def __init__(self, node):
        self.node = node

    # -- type -----------------------------------------------------------------------
    shape = property(lambda self: self.node.shape)
    dtype = property(lambda self: self.node.dtype)
    name = property(lambda self: self.node.name)
    op = property(lambda self: self.node.op.name)
    graph = property(lambda self: self.node.graph)
    ndim = property(lambda self: len(self.node.shape))

    def __repr__(self):
        return f"<Tensor {self.node.name}: {format_shape(self.shape)} {self.dtype}>"

    def __bool__(self):
        raise GraphcError(f"the truth value of symbolic tensor {self.name} is unknown "
                          "until it runs; use gc.where for data-dependent choices",
                          loc=user_location())

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise GraphcError(f"len() of {self!r}: first dimension unknown or absent",
                              loc=user_location())
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __deepcopy__(self, memo):
        """A variable's deep copy is a new variable of the same graph holding a copy
        of its current value (as a deep-copied torch parameter); any other tensor is a
        node of the graph, shared (a copied graph would not combine with anything)."""
        if self.op != "variable":
            return self
        state = self.node.attrs["state"]
        with self.graph:
            return _api.variable(state.value.copy(), name=self.name,
                                 trainable=state.trainable)

    # -- NumPy: a symbolic tensor has no value to convert, and np.* functions cannot build
    def __array__(self, dtype=None, copy=None):
        raise ArgumentError(f"{self!r} is symbolic: it has no value for NumPy until it runs. "
                            "Build on it with gc.* functions and run it with gc.compile "
                            "(a variable's current value is .value)", loc=user_location())

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        instead = f"gc.{name}" if hasattr(_api, name) else "the gc.* functions"
        raise ArgumentError(f"NumPy cannot compute symbolic tensor {self.name}: use "
                            f"{instead} to build on it and gc.compile to run it",
                            op=f"np.{name}", loc=user_location())

    # -- variables --------------------------------------------------------------------
    @property
    def value(self):
        """A copy of a variable's or constant's current value."""
        if self.op == "variable":
            return self.node.attrs["state"].value.copy()
        if self.op == "constant":
            return self.node.attrs["value"].copy()
        raise GraphcError(f"{self.name} is a {self.op} node; only variables and "
                          "constants hold a value (compile it to compute one)",
                          loc=user_location())

    def assign(self, value):
        """Set a variable's value (same shape; cast to its dtype)."""
        if self.op != "variable":
            raise GraphcError(f"{self.name} is a {self.op} node, not a variable",
                              loc=user_location())
        self.node.attrs["state"].assign(value, loc=user_location())

    # -- operators ------------------------------------------------------------------
    def __add__(self, other): return _api.add(self, other)
    def __radd__(self, other): return _api.add(other, self)
    def __sub__(self, other): return _api.subtract(self, other)
    def __rsub__(self, other): return _api.subtract(other, self)
    def __mul__(self, other): return _api.multiply(self, other)
    def __rmul__(self, other): return _api.multiply(other, self)
    def __truediv__(self, other): return _api.divide(self, other)
    def __rtruediv__(self, other): return _api.divide(other, self)
    def __pow__(self, other): return _api.power(self, other)
    def __rpow__(self, other): return _api.power(other, self)
    def __matmul__(self, other): return _api.matmul(self, other)
    def __rmatmul__(self, other): return _api.matmul(other, self)
    def __neg__(self): return _api.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _api.abs(self)
    def __invert__(self): return _api.logical_not(self)
    def __and__(self, other): return _api.logical_and(self, other)
    def __or__(self, other): return _api.logical_or(self, other)
    def __eq__(self, other): return _api.equal(self, other)
    def __ne__(self, other): return _api.not_equal(self, other)
    def __lt__(self, other): return _api.less(self, other)
    def __le__(self, other): return _api.less_equal(self, other)
    def __gt__(self, other): return _api.greater(self, other)
    def __ge__(self, other): return _api.greater_equal(self, other)
    def __getitem__(self, index): return _api.getitem(self, index)

    # -- NumPy-style methods ----------------------------------------------------------
    T = property(lambda self: _api.transpose(self))

    def reshape(self, *shape):
        return _api.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return _api.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)

    def astype(self, dtype): return _api.cast(self, dtype)
    def sum(self, axis=None, keepdims=False): return _api.sum(self, axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return _api.mean(self, axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _api.max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _api.min(self, axis, keepdims=keepdims)
    def flatten(self): return _api.reshape(self, (-1,))


def as_node(value, graph=None, like=None):
    """A graph node for a Tensor, NumPy array or Python scalar.

    A Python scalar next to a tensor `like` is weakly typed: it takes like's
    dtype unless that would lose its kind (2.5 next to an int is float32); a
    value that dtype cannot hold (2**40 next to an int32) is a DtypeError.
    """
    if isinstance(value, Tensor):
        return value.node
    graph = graph or default_graph()
    if isinstance(value, (numbers.Number, np.bool_)) and like is not None:
        array = dtypes.convert(value, dtypes.weak_scalar_dtype(value, like.dtype))
    elif isinstance(value, (numbers.Number, np.bool_, list, tuple, np.ndarray)):
        array = asarray(value)
        if array.dtype.kind == "f" and not isinstance(value, np.ndarray):
            array = array.astype(dtypes.DEFAULT_FLOAT)
        array = dtypes.convert(array, dtypes.of_array(array))
    else:
        raise ArgumentError(f"cannot use a {type(value).__name__} as a tensor")
    return graph.add(OPS["constant"], (), {"value": array})


def asarray(value):
    """np.asarray(value), with an ArgumentError (not NumPy's ValueError) for a ragged list."""
    try:
        return np.asarray(value)
    except GraphcError:             # a Tensor inside the list (Tensor.__array__)
        raise
    except ValueError:
        text = repr(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise ArgumentError(f"cannot make a tensor of {text}: its nested lists differ "
                            "in length") from None


def apply(op_name, *operands, **attrs):
    """Add `op_name(*operands, **attrs)` to the operands' graph; return its Tensor.

    Scalars among the operands become constants typed after the first tensor that is
    not a bool (a condition or mask: `where(x > 0, dy, 0)`'s 0 takes dy's dtype), or
    after the first tensor if all are bool.
    """
    tensors = [o for o in operands if isinstance(o, Tensor)]
    graph = tensors[0].graph if tensors else default_graph()
    values = [t for t in tensors if not dtypes.is_bool(t.node.dtype)] or tensors
    like = values[0].node if values else None
    try:
        nodes = [as_node(o, graph, like) for o in operands]
    except GraphcError as error:
        raise error.located(op_name, user_location()) from None
    return graph.add(OPS[op_name], nodes, attrs).tensor


def as_tensor(value):
    """value as a Tensor (a constant unless it is one); errors point at the user's line."""
    if isinstance(value, Tensor):
        return value
    try:
        return as_node(value).tensor
    except GraphcError as error:
        raise error.located(None, user_location()) from None


from graphc import api as _api  # noqa: E402  (operators call the public functions)
