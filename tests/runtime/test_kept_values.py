"""A costly value that a later pass over a row needs again is kept in an
output's buffer, not computed again (runtime/cpu/kept_values.py): how often
the kernel computes it, and that the values still match the reference,
gradients included."""
import re

import numpy as np
import pytest

import graphc as gc
from helpers_cpu import check, finite_values, plan_of, with_grads

# a line reading an output argument back: `v3 = o_a1[...]`
LOAD = re.compile(r"^\s*v\d+ = o_a\d+\[", re.M)


def calls(source, function):
    return len(re.findall(rf"\b{function}\(", source))


@pytest.mark.parametrize("shape, axis", [((40, 10), 1), ((128, 64), 1), ((16, 100), 1),
                                         ((3, 16, 5), 1), ((4, 6, 7), (1, 2))],
                         ids=["row 10", "row 64", "row 100", "middle axis", "two axes"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_computes_its_exp_once(shape, axis, dtype):
    """exp(x - max) feeds the sum in the second pass and the quotient in the third:
    the second stores it in the output's buffer, the third loads it back."""
    value = finite_values(dtype, shape, seed=60, scale=3.0)
    x = gc.placeholder(shape, dtype, name="x")
    if isinstance(axis, tuple):
        shifted = x - gc.max(x, axis=axis, keepdims=True)
        e = gc.exp(shifted)
        y = e / gc.sum(e, axis=axis, keepdims=True)
    else:
        y = gc.nn.softmax(x, axis=axis)
    source = plan_of(check({"softmax": y}, {x: value})).source
    assert calls(source, "exp") == 1 and len(LOAD.findall(source)) == 1, source


def test_a_kept_value_that_is_an_output_is_read_back_from_its_own_buffer():
    """e is an output of the kernel: the pass that computes it writes it, and the
    later pass reads that buffer rather than a second copy."""
    value = finite_values("float32", (64, 48), seed=61)
    x = gc.placeholder(value.shape, name="x")
    e = gc.exp(x - gc.max(x, axis=1, keepdims=True))
    step = check({"e": e, "normalized": e / gc.sum(e, axis=1, keepdims=True)}, {x: value})
    source = plan_of(step).source
    assert calls(source, "exp") == 1 and len(LOAD.findall(source)) == 1, source


def test_a_value_three_passes_need_is_computed_in_the_first_and_loaded_in_the_others():
    """A layer norm of e = exp(x - max(x)): the mean, the variance and the normalized
    value read e in three passes after the max's. (A costly value computed from
    buffers alone, tanh(x), is inlined where it is read, so every pass computes it:
    only placed values are kept.)"""
    value = finite_values("float32", (32, 40), seed=62, scale=2.0)
    x = gc.placeholder(value.shape, name="x")
    e = gc.exp(x - gc.max(x, axis=1, keepdims=True))
    centered = e - gc.mean(e, axis=1, keepdims=True)
    y = centered / gc.sqrt(gc.mean(centered * centered, axis=1, keepdims=True) + 1e-5)
    source = plan_of(check({"norm": y}, {x: value}, rtol=2e-5)).source
    assert calls(source, "exp") == 1 and len(LOAD.findall(source)) == 2, source


def test_a_cheap_value_is_computed_again():
    """x * x costs less than a store and a load: both passes compute it."""
    value = finite_values("float32", (32, 40), seed=63)
    x = gc.placeholder(value.shape, name="x")
    square = x * x
    source = plan_of(check({"share": square / gc.sum(square, axis=1, keepdims=True)},
                           {x: value})).source
    assert not LOAD.findall(source), source


def test_training_through_softmax_matches_the_reference():
    """Softmax inside a training graph (its output saved for the backward pass) with
    its gradients, over rows where one element dominates (exp underflows) and rows
    holding -inf (masked attention)."""
    value = finite_values("float32", (8, 4, 32), seed=64, scale=4.0)
    value[0, 0, :5] = -np.inf
    value[1, 2, 7] = 60.0
    x = gc.placeholder(value.shape, name="x")
    w = gc.constant(finite_values("float32", (32, 32), seed=65))
    y = gc.nn.softmax(x, axis=-1) @ w
    check(with_grads({"attention": y}, {"x": x}), {x: value})
