"""Compile every CUDA kernel of small W1 and W2 training steps, of an embedding's
gradient and of a program using every other library op to PTX for sm_90,
without a GPU (runtime/cuda/ptx.py). Run by test_cuda_kernels.py in a process
without the simulator; prints a summary."""
import os
import re
import sys

import numpy as np

import graphc as gc
from graphc.passes.pipeline import default_pipeline
from graphc.program import specialize
from graphc.runtime.cuda.ptx import compile_program

# after graphc: tests/ holds a folder named graphc too
sys.path.append(os.path.join(os.path.dirname(__file__), ".."))     # helpers.py
from small_cnn import cnn  # noqa: E402
from small_mlp import mlp  # noqa: E402


def program_of(step, shapes):
    program = specialize(step._nodes, step._inputs, step._outputs, step._updates, shapes)
    default_pipeline().run(program)
    return program


def compile_step(prefix, outputs, inputs, feeds, updates=None):
    step = gc.compile(outputs, inputs=inputs, updates=updates or {}, device="reference")
    program = program_of(step, [np.shape(f) for f in feeds])
    return {prefix + name: ptx for name, ptx in compile_program(program).items()}


def every_other_library_op():
    """conv with stride, padding and groups, both pools and their gradients (grad of
    grad too), random draws, concatenate, pad, slice_grad, argmax, argmin."""
    x = gc.placeholder((2, 4, 6, 5), name="x")
    w = gc.variable(np.ones((4, 2, 3, 2), "float32"), name="w")
    y = gc.nn.conv2d(x, w, stride=(2, 1), padding=1, groups=2)
    pooled = gc.nn.dropout(gc.nn.max_pool2d(y, 2), p=0.5)
    loss = gc.sum(pooled * pooled) + gc.sum(gc.nn.avg_pool2d(y, 2, count_include_pad=False)) \
        + gc.sum(gc.random.normal((3,), seed=1))
    dx, dw = gc.grad(loss, [x, w])
    (ddw,) = gc.grad(gc.sum(dx * dx), [w])           # through max_pool2d_select
    (dslice,) = gc.grad(gc.sum(x[:, 1:, ::-2] ** 2.0), [x])
    outputs = [loss, ddw, dslice, gc.concatenate([x, x * 2.0], axis=1),
               gc.pad(x, ((0, 0), (0, 0), (1, 1), (0, 2))), gc.argmax(x, axis=1),
               gc.argmin(gc.transpose(x, (0, 2, 1, 3)))]
    return outputs, [x], [np.zeros((2, 4, 6, 5), "float32")]


compiled = {}
with gc.Graph("w1"):
    workload, feeds = mlp()
    compiled.update(compile_step("w1_", workload.outputs, workload.inputs, feeds,
                                 workload.updates))
with gc.Graph("w2"):
    workload, feeds = cnn()
    compiled.update(compile_step("w2_", workload.outputs, workload.inputs, feeds,
                                 workload.updates))
with gc.Graph("embedding"):
    table = gc.variable(np.ones((7, 3), "float32"), name="table")
    ids = gc.placeholder((2, 5), "int64", name="ids")
    loss = gc.sum(gc.nn.embedding(ids, table) ** 2.0)
    (grad,) = gc.grad(loss, [table])
    compiled.update(compile_step("emb_", [loss], [ids], [np.zeros((2, 5), np.int64)],
                                 {table: table - 0.1 * grad}))
with gc.Graph("ops"):
    compiled.update(compile_step("ops_", *every_other_library_op()))
with gc.Graph("power"):                 # float power, and integers to negative powers
    x, b = gc.placeholder((4,), name="x"), gc.placeholder((4,), "int64", name="b")
    compiled.update(compile_step("pow_", [x ** x, b ** (b - 3)], [x, b],
                                 [np.ones(4, "float32"), np.ones(4, np.int64)]))
f64 = sorted(name for name, ptx in compiled.items() if re.search(r"\.f64\b", ptx))
print(f"compiled {len(compiled)} kernels, {len(f64)} using float64: {f64}")
print("\n".join(sorted(compiled)))
