"""runtime/cpu/hoisted_subscripts.py: a subscript used twice or more in one loop is
computed once, at the top of the body of the innermost loop whose variable it uses."""
import numpy as np

from graphc.runtime.cpu.hoisted_subscripts import hoist_subscripts

BODY = """\
    for i0 in range(3):
        acc = 0.0
        for i1 in range(4):
            v0 = a0[np.uint64(i0 * 4 + i1)] * a1[np.uint64(i0)]
            acc += v0 * a2[np.uint64(i0 * 4 + i1)]
        o0[np.uint64(i0)] = acc + a1[np.uint64(i0)]
        for i1 in range(4):
            o1[np.uint64(i0 * 4 + i1)] = a0[np.uint64(i0 * 4 + i1)] - tbl0[np.uint64(row0 + i1)]
            o2[np.uint64(i1)] = a0[np.uint64(i1 + 8)]""".splitlines()


def test_each_repeated_subscript_is_bound_once_in_its_loop():
    hoisted = hoist_subscripts(BODY)
    text = "\n".join(hoisted)
    # i0 * 4 + i1 twice in each inner loop (a binding each), i0 twice in the outer one
    assert text.count("= np.uint64(i0 * 4 + i1)") == 2
    assert text.count("= np.uint64(i0)") == 1
    assert hoisted[1] == "        ix1 = np.uint64(i0)"        # the top of i0's body
    assert hoisted[4] == "            ix0 = np.uint64(i0 * 4 + i1)"
    assert "a1[ix1]" in hoisted[5] and "a0[ix0]" in hoisted[5] and "a2[ix0]" in hoisted[6]
    # used once, or naming what is not a loop variable: left where it is
    assert "o2[np.uint64(i1)] = a0[np.uint64(i1 + 8)]" in text
    assert "tbl0[np.uint64(row0 + i1)]" in text
    assert len(hoisted) == len(BODY) + 3


def test_hoisted_body_computes_the_same_values():
    def run(lines):
        source = "def kernel(a0, a1, a2, tbl0, row0, o0, o1, o2):\n" + "\n".join(lines)
        scope = {"np": np}
        exec(source, scope)
        outputs = np.zeros(3), np.zeros(12), np.zeros(4)
        data = np.random.default_rng(0)
        scope["kernel"](data.random(12), data.random(3), data.random(12), data.random(8), 2,
                        *outputs)
        return outputs
    for before, after in zip(run(BODY), run(hoist_subscripts(BODY))):
        np.testing.assert_array_equal(before, after)


def test_a_body_without_repeats_is_unchanged():
    lines = ["    for i0 in range(5):", "        o0[np.uint64(i0)] = a0[np.uint64(i0 + 1)]"]
    assert hoist_subscripts(lines) == lines
