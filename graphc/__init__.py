"""graphc: a static-graph deep-learning compiler.

    import graphc as gc
    x = gc.placeholder((None, 784), name="x")
    loss = ...
    grads = gc.grad(loss, params)
    step = gc.compile([loss], inputs=[x, y], updates={...})
"""
from graphc import ops  # noqa: F401  (registers every op)
from graphc import data, dtypes, metrics, nn, optim, random  # noqa: F401
from graphc.api import *  # noqa: F401,F403
from graphc.autodiff import grad, stop_gradient  # noqa: F401
from graphc.dtypes import bool_, float32, float64, int32, int64  # noqa: F401
from graphc.errors import (  # noqa: F401
    ArgumentError, CompileError, DtypeError, FeedError, GradError, GraphcError, RuntimeFailure,
    ShapeError)
from graphc.executable import Executable, compile  # noqa: F401
from graphc.graph import Graph, Node, default_graph, name_scope  # noqa: F401
from graphc.random import manual_seed  # noqa: F401
from graphc.tensor import Tensor  # noqa: F401
from graphc import train  # noqa: F401,E402  (Trainer, EarlyStopping, checkpoints)
from graphc.data.errors import DataError  # noqa: F401,E402
from graphc.optim.optimizer import OptimizerError  # noqa: F401,E402
from graphc.train.errors import CheckpointError, TrainError  # noqa: F401,E402
from graphc import viz  # noqa: F401,E402  (pictures of every stage; after the rest)

__version__ = "0.1.0"

# The default device's backend loads with graphc (Numba, the kernel library: about
# 0.2 s), not inside the first gc.compile; set GRAPHC_DEVICE=reference to skip it.
from graphc import runtime  # noqa: E402

if runtime.DEFAULT_DEVICE == "cpu":
    runtime.backend("cpu")
