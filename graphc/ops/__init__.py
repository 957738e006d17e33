"""Every op graphc knows, one registry (`OPS`); importing this registers them all."""
from graphc.ops import (conv, elementwise, linalg, pool, random, reduce, shape,  # noqa: F401
                        softmax, source)
from graphc.ops.registry import ELEMENTWISE, INJECTIVE, OPAQUE, OPS, REDUCE, SOURCE, Op  # noqa: F401
