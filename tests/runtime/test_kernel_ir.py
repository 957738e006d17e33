"""runtime/cpu/kernel_ir.py and loop_kernel.py: a loop kernel lowered straight to LLVM IR
computes what Numba's compile of the same function computes, for every construct the
renderer emits; anything else compiles through Numba; whole training steps match
with the lowering on and off."""

import numpy as np
import pytest
from numba import njit, types

import graphc as gc
from graphc.runtime.cpu import loop_kernel
from graphc.runtime.cpu.loop_kernel import Lowered, LoopKernel
from graphc.runtime.cpu.python_call import PythonCall
from graphc.runtime.cpu.scalar import exp, log, opaque, relu, running_max, tanh, where  # noqa: F401
from helpers import small_workloads

OPTIONS = dict(fastmath={"contract", "nsz", "reassoc"}, error_model="numpy",
               no_cfunc_wrapper=True)
F32, F64, I64, B = (types.Array(t, 1, "C") for t in (types.float32, types.float64,
                                                      types.int64, types.boolean))


def _elementwise(a0, a1, o_a2, o_a3, err):
    for i0 in range(opaque(4)):
        for i1 in range(16):
            ix0 = np.uint64(i0 * 16 + i1)
            v0 = (a0[ix0] * a1[np.uint64(i1)] + np.float32(0.5))
            v1 = relu(v0) - exp(-v0) / np.float32(3.0)
            v2 = (v0 > np.float32(0.0)) and not (v1 < np.float32(-1.0))
            o_a2[ix0] = tanh(v1) if v2 else -v1 ** 2
            o_a3[ix0] = v2


def _softmax_rows(a0, o_a1, err):
    for i0 in range(8):
        acc0 = np.float32(-np.inf)
        for i1 in range(10):
            acc0 = running_max(acc0, a0[np.uint64(i0 * 10 + i1)])
        acc1 = np.float32(0.0)
        for i1 in range(10):
            acc1 += exp(a0[np.uint64(i0 * 10 + i1)] - acc0)
        v2 = np.float64(acc0) + log(np.float64(acc1))
        for i1 in range(10):
            ix0 = np.uint64(i0 * 10 + i1)
            o_a1[ix0] = np.float32(np.float64(a0[ix0]) - v2)


def _widened_sum(a0, a1, o_a2, err):
    """`where` of a float32 and an int64 is float64 (Numba's unification), so the
    float32 accumulator is widened to float64, as Numba's loop phi makes it."""
    acc0 = np.float32(0.0)
    for i0 in range(64):
        ix0 = np.uint64(i0)
        lab = a1[ix0]
        if lab < 0 or lab >= 3:
            err[0] = 1 + 0
        acc0 += where(lab == 1, a0[ix0], np.int64(0))
    v0 = acc0                   # (a chain of names takes the widened type in one lowering)
    v1 = v0
    v2 = v1
    v3 = v2
    v4 = v3
    v5 = v4
    v6 = v5
    v7 = v6
    v8 = v7
    v9 = v8
    o_a2[0] = v9


def _columns_in_chunks(chunk, start, stop, a0, o_a1, partials, err):
    """A columns-inside reduction run in chunks: a tail that returns early, a local
    accumulator array, min() and a tuple assignment, a 2-D argument."""
    if chunk < 0:
        acc0 = np.float32(0.0)
        for slot in range(0, partials.size, 2):
            acc0 += np.float32(partials[slot // 2, 0])
            partials[slot // 2, 0] = 0.0
        o_a1[24] = acc0
        return
    row0 = start * 4
    accs = np.full(min(stop * 4, 24) - row0, np.float32(0.0))
    for blk in range(start, stop):
        lo, hi = blk * 4, min((blk + 1) * 4, 24)
        for i0 in range(8):
            for i1 in range(lo, hi):
                accs[np.uint64(i1) - np.uint64(row0)] += a0[np.uint64(i0 * 24 + i1)]
    total = np.float32(0.0)
    for blk in range(start, stop):
        for i1 in range(blk * 4, min((blk + 1) * 4, 24)):
            o_a1[np.uint64(i1)] = accs[np.uint64(i1) - np.uint64(row0)]
            total += accs[np.uint64(i1) - np.uint64(row0)]
    partials[chunk, 0] = total


def _integers(a0, o_a1, err):
    for i0 in range(12):
        v0 = a0[np.uint64(i0)]
        o_a1[np.uint64(i0)] = (v0 // 3 - v0 % 5) * 2 if v0 != 0 else -(v0 << 2) | 1


def _while_loop(a0, o_a1, err):
    i0 = 0
    while i0 < 5:
        o_a1[np.uint64(i0)] = a0[np.uint64(i0)] * 2
        i0 += 1


def _guarded_read(a0, o_a1, err):
    for i0 in range(8):
        if i0 < 5 and a0[np.uint64(i0)] > np.float32(0.0):
            o_a1[np.uint64(i0)] = np.float32(1.0)


def _lowered_and_numba(function, argtypes):
    kernel = LoopKernel(py_func=function, locals={},
                        targetoptions={**OPTIONS, "nopython": True, "boundscheck": None})
    kernel.compile(argtypes)
    return kernel, PythonCall(kernel), njit(**OPTIONS)(function)


def _run_both(function, argtypes, arguments):
    kernel, lowered, numba_compiled = _lowered_and_numba(function, argtypes)
    assert isinstance(kernel.overloads[argtypes], Lowered), kernel.unsupported
    ours = [a.copy() if isinstance(a, np.ndarray) else a for a in arguments]
    theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in arguments]
    lowered(*ours)
    numba_compiled(*theirs)
    return ours, theirs


def _close(ours, theirs):
    for got, want in zip(ours, theirs):
        if isinstance(got, np.ndarray):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_elementwise_operations_and_scalar_functions():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(64).astype(np.float32), rng.standard_normal(16).astype(np.float32),
            np.zeros(64, np.float32), np.zeros(64, bool), np.zeros(1, np.int64)]
    ours, theirs = _run_both(_elementwise, (F32, F32, F32, B, I64), args)
    _close(ours, theirs)
    assert ours[3].any() and not ours[3].all()      # both branches taken


def test_row_passes_with_a_max_and_a_float64_log():
    x = np.random.default_rng(1).standard_normal(80).astype(np.float32) * 30
    ours, theirs = _run_both(_softmax_rows, (F32, F32, I64), [x, np.zeros(80, np.float32),
                                                            np.zeros(1, np.int64)])
    _close(ours, theirs)
    np.testing.assert_allclose(np.exp(ours[1].reshape(8, 10).astype(np.float64)).sum(1), 1,
                               rtol=1e-5)


def test_an_accumulator_widened_by_what_is_added_to_it():
    """The sum of 64 values near 1e4 with one small one: a float32 accumulator would
    round the small ones away; a float64 one (Numba's typing) keeps them."""
    x = np.full(64, 1e4, np.float32)
    x[::7] = 1e-3
    labels = np.arange(64) % 3
    labels[5] = 7                                   # out of range: err is set
    ours, theirs = _run_both(_widened_sum, (F32, I64, F32, I64),
                             [x, labels, np.zeros(1, np.float32), np.zeros(1, np.int64)])
    assert ours[2][0] == theirs[2][0]
    assert ours[3][0] == theirs[3][0] == 1


def test_a_chunked_columns_reduction_with_its_tail():
    x = np.random.default_rng(2).standard_normal(8 * 24).astype(np.float32)
    argtypes = (types.int64, types.int64, types.int64, F32, F32,
                types.Array(types.float64, 2, "C"), I64)
    kernel, lowered, numba_compiled = _lowered_and_numba(_columns_in_chunks, argtypes)
    assert isinstance(kernel.overloads[argtypes], Lowered), kernel.unsupported
    results = []
    for call in (lowered, numba_compiled):
        out, partials = np.zeros(25, np.float32), np.zeros((3, 2))
        for chunk, (start, stop) in enumerate([(0, 2), (2, 5), (5, 6)]):
            call(chunk, start, stop, x, out, partials, np.zeros(1, np.int64))
        call(-1, 0, 0, x, out, partials, np.zeros(1, np.int64))
        results.append(out)
        assert not partials.any()                   # the tail zeroed its slots
        assert out[24] == pytest.approx(x.sum(), rel=1e-5)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
    np.testing.assert_allclose(results[0][:24], x.reshape(8, 24).sum(0), rtol=1e-5)


def test_integer_arithmetic_follows_numpy_division_rules():
    a = np.array([0, 7, -7, 13, -1, 5, 100, -100, 3, 1, -3, 2], np.int64)
    ours, theirs = _run_both(_integers, (I64, I64, I64), [a, np.zeros(12, np.int64),
                                                          np.zeros(1, np.int64)])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_a_construct_outside_the_subset_compiles_through_numba():
    kernel, call, _ = _lowered_and_numba(_while_loop, (F32, F32, I64))
    assert not isinstance(kernel.overloads[(F32, F32, I64)], Lowered)
    assert "While" in kernel.unsupported
    out = np.zeros(5, np.float32)
    call(np.arange(5, dtype=np.float32), out, np.zeros(1, np.int64))
    np.testing.assert_array_equal(out, [0, 2, 4, 6, 8])


def test_a_read_that_and_would_skip_is_not_lowered():
    """Lowering evaluates every operand of `and`; a read there could be out of bounds
    (here a0 has 5 elements), so the kernel compiles through Numba."""
    kernel, call, _ = _lowered_and_numba(_guarded_read, (F32, F32, I64))
    assert not isinstance(kernel.overloads[(F32, F32, I64)], Lowered)
    assert "and/or" in kernel.unsupported
    out = np.zeros(8, np.float32)
    call(np.array([1, -1, 2, 0, 3], np.float32), out, np.zeros(1, np.int64))
    np.testing.assert_array_equal(out, [1, 0, 1, 0, 1, 0, 0, 0])


def _step_results(build, lower, monkeypatch, tmp_path):
    monkeypatch.setattr(loop_kernel, "LOWER", lower)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / f"lower={lower}"))
    with gc.Graph(f"kernel_ir {lower}"):
        w = build()
        step = w.compile(device="cpu")
        results = []
        for _ in range(2):
            out = step(*w.feeds)
            results.append([np.array(o) for o in (out if isinstance(out, list) else [out])])
        results.append([v.value.copy() for v in step.variables])
    (plan,) = step._plans.values()
    kernels = set(plan.functions.values())
    compiled = [r for f in kernels for r in f.overloads.values()]
    return results, compiled, kernels


@pytest.mark.parametrize("name", ["W1 mlp", "W2 cnn", "W3 rnn", "W4 fusion"])
def test_every_kernel_of_the_workloads_is_lowered(name, monkeypatch, tmp_path):
    _, compiled, kernels = _step_results(small_workloads()[name], True, monkeypatch, tmp_path)
    assert compiled and all(isinstance(r, Lowered) for r in compiled), \
        [k.unsupported for k in kernels]


@pytest.mark.parametrize("name", ["W2 cnn", "W3 rnn"])
def test_training_steps_match_with_and_without_the_lowering(name, monkeypatch, tmp_path):
    build = small_workloads()[name]
    lowered, _, _ = _step_results(build, True, monkeypatch, tmp_path)
    through_numba, numba_compiled, _ = _step_results(build, False, monkeypatch, tmp_path)
    assert not any(isinstance(r, Lowered) for r in numba_compiled)
    for ours, theirs in zip(lowered, through_numba):
        for got, want in zip(ours, theirs):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
