"""gc.viz.summary: the kernels in order, with ops, shapes, bytes and time share."""
import numpy as np

import graphc as gc
from graphc.runtime.profile import Profile


def rows(text):
    lines = text.splitlines()
    assert set(lines[1].replace(" ", "")) == {"-"}
    return [line for line in lines[2:] if line.split() and line.split()[0].isdigit()]


def test_one_row_per_kernel_in_schedule_order(w1):
    kernels = w1.step.program.fusion.kernels
    table = rows(gc.viz.summary(w1.step))
    assert [r.split()[1] for r in table] == [k.name for k in kernels]
    assert "matmul, add, relu" in table[0]
    assert "(8, 512)" in table[0]
    assert f"{len(kernels)} kernels" in gc.viz.summary(w1.step)


def test_time_share_when_profiled(w1):
    kernels = w1.step.program.fusion.kernels
    profile = Profile([(k.name, "", 1.0 if i == 0 else 0.0) for i, k in enumerate(kernels)], 1)
    table = rows(gc.viz.summary(w1.step, profile))
    assert table[0].endswith("100.0%") and table[1].endswith("0.0%")


def test_a_real_profile_sums_to_the_whole_step(w1):
    profile = w1.step.profile(*w1.workload.feeds, repeats=1)
    shares = [float(r.split()[-1].rstrip("%")) for r in rows(gc.viz.summary(w1.step, profile))]
    assert abs(sum(shares) - 100) < 1


def test_reference_device_lists_nodes():
    x = gc.placeholder((3,), name="x")
    step = gc.compile(gc.exp(x) + 1.0, device="reference")
    assert gc.viz.summary(step).startswith("not compiled yet")
    step(np.ones(3, np.float32))
    text = gc.viz.summary(step)
    assert [r.split()[2] for r in rows(text)] == ["exp", "constant", "add"]
    assert "run one by one (reference)" in text
