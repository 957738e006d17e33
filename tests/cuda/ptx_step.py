"""Compile every CUDA kernel of a small W1 training step and of an embedding's
gradient to PTX for sm_90, without a GPU (runtime/cuda/ptx.py). Run by
test_cuda_kernels.py in a process without the simulator; prints a summary."""
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
from small_mlp import mlp  # noqa: E402


def program_of(step, shapes):
    program = specialize(step._nodes, step._inputs, step._outputs, step._updates, shapes)
    default_pipeline().run(program)
    return program


compiled = {}
with gc.Graph("w1"):
    workload, feeds = mlp()
    step = workload.compile(device="reference")
    compiled.update(compile_program(program_of(step, [f.shape for f in feeds])))
with gc.Graph("embedding"):
    table = gc.variable(np.ones((7, 3), "float32"), name="table")
    ids = gc.placeholder((2, 5), "int64", name="ids")
    loss = gc.sum(gc.nn.embedding(ids, table) ** 2.0)
    (grad,) = gc.grad(loss, [table])
    step = gc.compile([loss], inputs=[ids], updates={table: table - 0.1 * grad},
                      device="reference")
    compiled.update({"emb_" + k: v for k, v in
                     compile_program(program_of(step, [(2, 5)])).items()})
f64 = [name for name, ptx in compiled.items() if re.search(r"\.f64\b", ptx)]
print(f"compiled {len(compiled)} kernels, {len(f64)} using float64: {f64}")
print("\n".join(sorted(compiled)))
