"""matmul with NumPy's batch broadcasting (1-D operands handled by the public
function, so the op itself always sees at least 2-D operands)."""
import numpy as np

from graphc import dtypes
from graphc.errors import DtypeError, ShapeError, user_location
from graphc.graph import format_shape
from graphc.ops.registry import OPAQUE, register_op
from graphc.ops.rules import blamed_on, broadcast_shapes
from graphc.ops.shape import expand_dims, squeeze, swapaxes
from graphc.tensor import apply, as_tensor


@register_op("matmul", OPAQUE)
class Matmul:
    """y = a @ b over the last two axes; leading axes broadcast."""
    def infer(a, b):
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise ShapeError(f"operands need 2 or more dimensions, got {format_shape(a.shape)} "
                             f"and {format_shape(b.shape)}")
        if dtypes.is_bool(a.dtype) or dtypes.is_bool(b.dtype):
            raise DtypeError(f"cannot multiply bool matrices ({a.dtype}, {b.dtype})")
        k1, k2 = a.shape[-1], b.shape[-2]
        if k1 is not None and k2 is not None and k1 != k2:
            raise ShapeError(f"shapes {format_shape(a.shape)} and {format_shape(b.shape)} "
                             f"do not align ({k1} != {k2})")
        try:
            batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ShapeError:
            raise ShapeError(f"batch dimensions of {format_shape(a.shape)} and "
                             f"{format_shape(b.shape)} do not broadcast") from None
        return batch + (a.shape[-2], b.shape[-1]), dtypes.promote(a.dtype, b.dtype)

    reference = np.matmul

    def grad(y, dy, a, b):
        return [matmul(dy, swapaxes(b, -1, -2)), matmul(swapaxes(a, -1, -2), dy)]


@blamed_on("matmul")
def matmul(x1, x2):
    """NumPy's matmul: 1-D operands are promoted to matrices and the added axis removed."""
    x1, x2 = as_tensor(x1), as_tensor(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError(f"matmul of a scalar ({format_shape(x1.shape)}, {format_shape(x2.shape)}); "
                         "use *", op="matmul", loc=user_location())
    k1, k2 = x1.shape[-1], x2.shape[-2 if x2.ndim > 1 else -1]
    if k1 is not None and k2 is not None and k1 != k2:   # name the user's shapes, not promoted ones
        raise ShapeError(f"shapes {format_shape(x1.shape)} and {format_shape(x2.shape)} "
                         f"do not align ({k1} != {k2})", op="matmul", loc=user_location())
    a = expand_dims(x1, 0) if x1.ndim == 1 else x1
    b = expand_dims(x2, -1) if x2.ndim == 1 else x2
    out = apply("matmul", a, b)
    if x2.ndim == 1:
        out = squeeze(out, -1)
    if x1.ndim == 1:
        out = squeeze(out, -1 if x2.ndim == 1 else -2)
    return out


def dot(a, b):
    """matmul for operands of at most two dimensions."""
    return matmul(a, b)
