"""runtime/cpu/step_program.py and thunks.py: a step program hands each kernel
exactly the views its Call names, at the addresses of the arrays of this run;
stops at the first failed check with its site; propagates a kernel's
exception; runs a chunked call over every chunk; and needs a thunk per kernel
signature, not per call.

The kernels here are njit functions of a stand-in module; the programs run on
a small arena and err, with an empty addresses array unless said otherwise."""
import types as pytypes

import numba
import numpy as np
import pytest
from numba import njit

from graphc.runtime.cpu import thunks
from graphc.runtime.cpu.step_program import Call, build_program, run_program
from graphc.runtime.cpu.step_views import View

NO_ADDRESSES = np.zeros(0, np.int64)


@njit
def _record(x, y, pieces, code, scale, err):
    """What a kernel sees: writes its arguments' values where they point."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = scale * (10 * i + j)
    for i in range(y.size):
        y[i] = code
    for k in range(len(pieces)):
        pieces[k][0] = -1.0 - k
    err[0] = x.strides[0] * 1000 + x.strides[1]
    return code + 1


@njit
def _fill(out, value):
    for i in range(out.size):
        out[i] = value


@njit
def _code_if_negative(x):
    return 7 if x[0] < 0 else 0


@njit
def _flag_in_err(x, err):
    if x[0] < 0:
        err[0] = 3


@njit
def _raise_if_negative(x):
    if x[0] < 0:
        raise ValueError("a negative first element")


@njit
def _chunk_numbers(chunk, start, stop, out, err):
    for i in range(start, stop):
        out[i] = chunk + 1


KERNELS = pytypes.SimpleNamespace(**{f.py_func.__name__: f for f in (
    _record, _fill, _code_if_negative, _flag_in_err, _raise_if_negative, _chunk_numbers)})
ERR = View.contiguous("err", 0, "int64", (1,))


def _run(calls, arena, err, *feeds, bases=("arena", "err")):
    program = build_program(calls, KERNELS, [*bases, *(f"feed{i}" for i in range(len(feeds)))])
    return run_program(program, arena, NO_ADDRESSES, err, *feeds)


def test_a_kernel_writes_where_numpy_views_point():
    arena, err = np.zeros(512, np.uint8), np.zeros(1, np.int64)
    x = View("arena", 64, "float32", (3, 2), (4, 24), "A")
    y = View("arena", 4, "float32", (5,), (8,), "A")
    pieces = (View.contiguous("arena", 200, "float32", (2,)),
              View.contiguous("arena", 240, "float32", (2,)))
    site, code = _run([Call("_record", (x, y, pieces, 7, 0.5, ERR))], arena, err)
    assert (site, code) == (0, 0)
    expected = np.zeros(512, np.uint8)
    floats = expected.view(np.float32)
    strided = np.lib.stride_tricks.as_strided(floats[16:], (3, 2), (4, 24))
    strided[...] = 0.5 * (10 * np.arange(3)[:, None] + np.arange(2))
    floats[1:11:2] = 7
    floats[50], floats[60] = -1.0, -2.0
    assert np.array_equal(arena, expected)
    assert err[0] == 4 * 1000 + 24          # the kernel saw the strides of the Call


def test_views_follow_their_arrays_to_new_addresses_each_run():
    """Bases are read at each run: a feed at another address, a different arena."""
    calls = [Call("_fill", (View.contiguous("feed0", 8, "float64", (3,)), 2.5)),
             Call("_fill", (View.contiguous("arena", 0, "float64", (2,)), -1.0))]
    program = build_program(calls, KERNELS, ["arena", "err", "feed0"])
    err = np.zeros(1, np.int64)
    for _ in range(2):
        arena, feed = np.zeros(2), np.zeros(5)
        assert run_program(program, arena, NO_ADDRESSES, err, feed) == (0, 0)
        assert feed.tolist() == [0, 2.5, 2.5, 2.5, 0] and arena.tolist() == [-1, -1]


def test_an_address_from_the_addresses_array_is_a_base():
    """The step's statics and variables come by address (`addresses`), after the arena."""
    storage = np.zeros(4, np.float32)
    program = build_program([Call("_fill", (View.contiguous("var0", 4, "float32", (2,)), 3.0))],
                            KERNELS, ["arena", "var0", "err"])
    addresses = np.array([storage.ctypes.data], np.int64)
    assert run_program(program, np.zeros(1), addresses, np.zeros(1, np.int64)) == (0, 0)
    assert storage.tolist() == [0, 3, 3, 0]


@pytest.mark.parametrize("check, kernel", [("result", "_code_if_negative"),
                                           ("err", "_flag_in_err")])
def test_a_failed_check_stops_the_step_with_its_site_and_code(check, kernel):
    arena, err = np.zeros(4), np.zeros(1, np.int64)
    first = View.contiguous("arena", 0, "float64", (1,))
    rest = View.contiguous("arena", 8, "float64", (3,))
    arguments = (first,) if check == "result" else (first, ERR)
    calls = [Call(kernel, arguments, site=5, check=check), Call("_fill", (rest, 1.0))]
    assert _run(calls, arena, err) == (0, 0) and arena.tolist() == [0, 1, 1, 1]
    arena[:] = [-1, 0, 0, 0]
    site, code = _run(calls, arena, err)
    assert (site, code) == (5, 7 if check == "result" else 3)
    assert arena.tolist() == [-1, 0, 0, 0]          # the call after it did not run


def test_a_kernels_exception_propagates_from_the_step():
    arena = np.array([-1.0])
    calls = [Call("_raise_if_negative", (View.contiguous("arena", 0, "float64", (1,)),))]
    with pytest.raises(ValueError, match="a negative first element"):
        _run(calls, arena, np.zeros(1, np.int64))
    arena[0] = 1.0
    assert _run(calls, arena, np.zeros(1, np.int64)) == (0, 0)


def test_a_chunked_call_runs_every_chunk_once():
    arena, err = np.zeros(37, np.int64), np.zeros(1, np.int64)
    out = View.contiguous("arena", 0, "int64", (37,))
    assert _run([Call("_chunk_numbers", (out, ERR), chunks=37)], arena, err) == (0, 0)
    threads = min(numba.get_num_threads(), 37)
    assert sorted(set(arena.tolist())) == list(range(1, threads + 1))
    assert np.all(np.diff(arena) >= 0)              # equal ranges, in chunk order


def test_calls_of_one_signature_share_a_thunk():
    views = [View.contiguous("arena", 8 * k, "float64", (1,)) for k in range(3)]
    program = build_program([Call("_fill", (v, 1.0)) for v in views] +
                            [Call("_fill", (View.contiguous("arena", 0, "float64", (3,)), 2.0)),
                             Call("_code_if_negative", (views[0],))],
                            KERNELS, ["arena", "err"])
    calls_at, count = program[5], program[4]
    records = program[calls_at:calls_at + 5 * count].reshape(count, 5)
    assert len(set(records[:, 0])) == 2             # _fill's signature, _code_if_negative's
    assert set(records[:, 0]) <= {address for _, address in thunks._compiled.values()}


def test_a_program_given_other_arrays_than_it_was_built_for_refuses_to_run():
    """Its bases are written in place: more arrays than it has slots for would
    overwrite its relocations."""
    program = build_program([Call("_fill", (View.contiguous("feed0", 0, "float64", (1,)), 1.0))],
                            KERNELS, ["arena", "err", "feed0"])
    feed = np.zeros(1)
    with pytest.raises(ValueError, match="built for other arrays"):
        run_program(program, np.zeros(1), NO_ADDRESSES, np.zeros(1, np.int64), feed, feed)
    assert feed[0] == 0
