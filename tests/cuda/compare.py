"""The CUDA tests' comparison with device="reference": seeded data, and `check`,
which runs outputs on both devices and asserts every output equal.

Float32 tolerance: rtol 1e-5, atol 1e-6 unless a test states another (sums
whose order differs between the devices, such as conv's GEMMs); float64: 1e-12.
"""
import numpy as np

import graphc as gc

RNG = np.random.default_rng(6)


def data(*shape, dtype="float32"):
    return RNG.standard_normal(shape).astype(dtype)


def check(outputs, feeds, rtol=1e-5, atol=1e-6):
    """Run on the reference and on cuda; every output equal; returns the cuda plan."""
    inputs = list(feeds)
    want = gc.compile(outputs, inputs=inputs, device="reference")(*feeds.values())
    step = gc.compile(outputs, inputs=inputs, device="cuda")
    got = step(*feeds.values())
    for w, g in zip(want, got):
        assert g.shape == w.shape and g.dtype == w.dtype
        tol = (1e-12, 1e-12) if w.dtype == np.float64 else (rtol, atol)
        np.testing.assert_allclose(g, w, rtol=tol[0], atol=tol[1])
    return next(iter(step._plans.values()))


def library_launches(plan):
    """(kernel function name, grid) of each launch of a plan's library nodes, in order."""
    found = []
    for kernel in plan.fusion.kernels:
        if kernel.library is not None:
            node = kernel.library
            operands = [None if slot in node.op.shape_only else plan.operand(x)
                        for slot, x in enumerate(node.inputs)]
            launches = plan.library.prepare(node, operands, plan.flat(node), plan.err, 0)
            found += [(getattr(function, "py_func", getattr(function, "fn", None)).__name__,
                       grid) for function, grid, _, _ in launches]
    return found


def launched(plan):
    """The names of the kernel functions a plan's library nodes launch, in order."""
    return [name for name, _ in library_launches(plan)]
