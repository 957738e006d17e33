"""The op registry: each op defined once, with everything the pipeline needs.

    @register_op("tanh", ELEMENTWISE)
    class Tanh:
        '''y = tanh(x).'''
        infer = float_unary                           # (shape, dtype) from input types
        reference = np.tanh                           # NumPy semantics
        def grad(y, dy, x): return [dy * (1 - y * y)] # graph ops, so grad of grad works
        scalar = "tanh({0})"                          # what fusion emits

- `infer(*inputs, **attrs)` takes nodes (anything with .shape and .dtype) and
  returns (shape, dtype), raising ShapeError / DtypeError with a bare message.
- `reference(*arrays, **attrs)` computes the value with NumPy.
- `grad(y, dy, *inputs, **attrs)` takes Tensors and returns one gradient (or
  None) per input. The engine undoes broadcasting and casts to the input's
  dtype, so a rule may return a gradient of the output's shape.
- `shape_only`: operand indices read only for their shape (never their data).
- The kind drives fusion: elementwise (a scalar expression), injective (an
  index map), reduce, opaque (a library kernel) or source (no inputs to read).
"""
import numpy as np

ELEMENTWISE = "elementwise"
INJECTIVE = "injective"
REDUCE = "reduce"
OPAQUE = "opaque"
SOURCE = "source"

OPS = {}


class Op:
    """One registered op. Instances are singletons, compared by identity."""

    def __init__(self, name, kind, definition, shape_only=(), is_random=False):
        self.name, self.kind = name, kind
        self.infer = definition.infer
        self.reference = definition.reference
        self.grad = getattr(definition, "grad", None)
        self.scalar = getattr(definition, "scalar", None)
        self.costly = getattr(definition, "costly", False)
        self.shape_only = tuple(shape_only)
        self.is_random = is_random
        self.__doc__ = definition.__doc__

    def compute(self, arrays, attrs, dtype):
        """The reference value, in the dtype the type rule promised."""
        return np.asarray(self.reference(*arrays, **attrs)).astype(dtype, copy=False)

    def __repr__(self):
        return f"<op {self.name} ({self.kind})>"


def register_op(name, kind, shape_only=(), is_random=False):
    """Class decorator: the class body is the op's definition; returns the Op."""
    def wrap(definition):
        if name in OPS:
            raise ValueError(f"op {name!r} registered twice")
        OPS[name] = Op(name, kind, definition, shape_only, is_random)
        return OPS[name]
    return wrap
