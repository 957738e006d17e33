"""Memory planning: live buffers never overlap, the arena comes close to the lower
bound, in-place reuse and in-place variable updates happen where they are safe and
not where they are not; a NumPy simulation of the plan (one real arena, variables
written in place, dead bytes poisoned before every kernel) computes what the
reference interpreter computes."""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.passes.fuse import ELEMENT
from graphc.passes.memplan import ALIGNMENT, MemoryPlan, memplan
from graphc.passes.pipeline import default_pipeline
from helpers_passes import program_of, rng, run
from test_differential import random_graphs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import workloads  # noqa: E402

SMALL = {"mlp": {}, "cnn": {"batch": 8}, "rnn": {"batch": 4, "steps": 5}, "fusion": {"n": 4096}}


# -- helpers ----------------------------------------------------------------------------

def planned(program):
    """Run the default pipeline (which ends with memplan) over `program`; return it."""
    records = default_pipeline().run(program, snapshots=False)
    assert records[-1].name == "memplan" and isinstance(program.memory, MemoryPlan)
    return program


def workload_program(name):
    """(planned program, feeds) of workload `name` at the small sizes."""
    with gc.Graph(name):
        w = workloads.ALL[name](**SMALL[name])
        program = program_of(w.outputs, w.inputs, [f.shape for f in w.feeds], w.updates)
    return planned(program), w.feeds


def hand_program(outputs, inputs, updates=None):
    return planned(program_of(outputs, inputs, updates=updates))


def assert_consistent(plan):
    """Live buffers are disjoint, aligned and inside the arena; lower <= arena <= naive."""
    roots = {node: plan.root(node) for node in plan.buffers}
    items = list(plan.buffers.items())
    for node, b in items:
        assert b.offset % ALIGNMENT == 0 and b.offset + b.nbytes <= plan.arena_bytes
        assert 0 <= b.start <= b.end <= plan.steps
        if b.shares is not None:
            assert plan.buffers[b.shares].offset == b.offset
            assert plan.buffers[b.shares].nbytes == b.nbytes
    for i, (a, ba) in enumerate(items):
        for c, bc in items[i + 1:]:
            if roots[a] is not roots[c] and ba.overlaps_in_time(bc):
                assert not ba.overlaps_in_memory(bc), (a.name, ba, c.name, bc)
    assert plan.lower_bound <= plan.arena_bytes <= plan.naive_bytes
    assert plan.naive_bytes == sum(-(-b.nbytes // ALIGNMENT) * ALIGNMENT
                                   for b in plan.buffers.values())
    for variable, value, how in plan.writes:
        assert (how == "inplace") == (plan.variable_storage.get(value) is variable)
        assert value not in plan.variable_storage or value not in plan.buffers
    assert set(plan.variable_storage) == {v for v, how in plan.variable_writes.items()
                                          if how == "inplace"}
    assert len(plan.variable_storage) == len(plan.writes) - len(plan.variable_copies)


def simulate(program, feeds):
    """Run the fused program kernel by kernel with the NumPy references on the planned
    memory: one byte arena (bytes no live buffer owns are set to 0xFF, a NaN for floats,
    before every step), variables (copies of their states) written in place where the
    plan says so, outputs copied out at step n, then the copies into variables.
    Returns (outputs, new values of the updated variables)."""
    plan, kernels = program.memory, program.fusion.kernels
    arena = np.zeros(plan.arena_bytes, np.uint8)
    storage = {v: np.array(v.attrs["state"].value, copy=True) for v in program.variables}
    feed = dict(zip(program.inputs, feeds))
    order = {node: i for i, node in enumerate(program.graph.topological())}

    def read(node):
        if node in plan.aliases:
            return node.op.reference(read(node.inputs[0]), **node.attrs)
        where = plan.location(node)
        if where[0] == "arena":
            return arena[where[1]:where[1] + where[2]].view(node.dtype).reshape(node.shape)
        if where[0] == "input":
            return feed[node]
        if where[0] == "constant":
            return node.attrs["value"]
        return storage[where[1]]

    def write(node, value):
        np.copyto(read(node), np.asarray(value).reshape(node.shape), casting="no")

    def poison(step):
        live = np.zeros(plan.arena_bytes, bool)
        for b in plan.buffers.values():
            if b.start <= step <= b.end:
                live[b.offset:b.offset + b.nbytes] = True
        arena[~live] = 0xFF

    for step, kernel in enumerate(kernels):
        poison(step)
        values = {}

        def value(node):
            return values[node] if node in values else np.array(read(node))

        for node in sorted(kernel.all_nodes, key=order.get):
            values[node] = node.op.compute([value(i) for i in node.inputs], node.attrs, node.dtype)
            if node is kernel.library:          # the library call ends before the loop starts
                write(node, values[node])
        for node in kernel.outputs:
            if node is not kernel.library and node not in plan.aliases:
                write(node, values[node])
    poison(plan.steps)
    outputs = [np.array(read(o)) for o in program.outputs]
    copies = [(v, np.array(read(value))) for v, value, how in plan.writes if how == "copy"]
    for v, value in copies:
        storage[v][...] = value
    return outputs, [storage[v] for v, _ in program.updates]


def assert_simulation_matches(program, feeds, rtol=2e-5, atol=1e-6):
    with np.errstate(all="ignore"):
        expected = run(program, feeds)
        got = simulate(program, feeds)
    for a, b in zip(expected[0] + expected[1], got[0] + got[1]):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


def schedule_is_valid(program):
    """Each kernel runs after the kernels whose outputs it reads (looking through
    aliases and the inputs of its inlined nodes)."""
    kernels = program.fusion.kernels
    writer = {}
    for i, kernel in enumerate(kernels):
        for node in kernel.all_nodes:
            writer.setdefault(node, i)
    for i, kernel in enumerate(kernels):
        for node in kernel.inputs:
            while node in program.fusion.aliases:
                node = node.inputs[0]
            if writer.get(node, -1) > i:
                return False
    return True


def kernel_of(program, node):
    return next(i for i, k in enumerate(program.fusion.kernels) if node in k.outputs)


def readers_of(program, node):
    """Steps of the kernels that read `node`, directly or through aliases."""
    def base(n):
        while n in program.fusion.aliases:
            n = n.inputs[0]
        return n
    return [i for i, k in enumerate(program.fusion.kernels)
            if any(base(n) is node for n in k.inputs)]


# -- workloads --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workloads_planned():
    return {name: workload_program(name) for name in SMALL}


@pytest.mark.parametrize("name", list(SMALL))
def test_live_buffers_never_overlap_on_the_workloads(workloads_planned, name):
    program, _ = workloads_planned[name]
    assert program.memory.buffers
    assert_consistent(program.memory)


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn"])
def test_arena_is_within_ten_percent_of_the_lower_bound(workloads_planned, name):
    plan = workloads_planned[name][0].memory
    print(f"\n{name}: arena {plan.arena_bytes} B, lower bound {plan.lower_bound} B "
          f"({plan.arena_bytes / plan.lower_bound:.3f}x), naive {plan.naive_bytes} B")
    assert plan.arena_bytes <= 1.10 * plan.lower_bound
    assert plan.arena_bytes < plan.naive_bytes


@pytest.mark.parametrize("name", list(SMALL))
def test_the_plan_computes_what_the_reference_computes(workloads_planned, name):
    program, feeds = workloads_planned[name]
    assert_simulation_matches(program, feeds)


def test_w1_sgd_updates_are_written_in_place(workloads_planned):
    program, _ = workloads_planned["mlp"]
    plan = program.memory
    assert len(program.updates) == 12
    assert all(plan.variable_writes[value] == "inplace" for _, value in program.updates)
    assert plan.variable_copies == [] and program.memory.report()["variable_copies"] == 0
    assert {plan.variable_storage[value] for _, value in program.updates} == \
        {v for v, _ in program.updates}
    assert not any(value in plan.buffers for _, value in program.updates)


def test_w1_relu_overwrites_the_matmul(workloads_planned):
    program, _ = workloads_planned["mlp"]
    pairs = {(o.op.name, i.op.name) for o, i in program.memory.inplace}
    assert ("relu", "matmul") in pairs


def test_w4_scalar_updates_are_written_in_place(workloads_planned):
    program, _ = workloads_planned["fusion"]
    plan = program.memory
    assert {v.name for v, _ in program.updates} == {"a", "b", "a_velocity", "b_velocity"}
    assert all(plan.variable_writes[value] == "inplace" for _, value in program.updates)
    assert plan.variable_copies == []


def test_w3_index_checks_of_the_gradient_repeat_the_forward_ones(workloads_planned):
    """take_grad checks the ids that the forward take already checked: only the take
    kernel can fail, so the embedding update, fused after take_grad, is in place."""
    program, _ = workloads_planned["rnn"]
    plan = program.memory
    kernels = program.fusion.kernels
    assert [kernels[i].library.op.name for i in plan.fallible] == ["take"]
    assert any(k.library is not None and k.library.op.name == "take_grad" for k in kernels)
    assert plan.variable_copies == []


def test_w3_and_w2_bias_updates_at_row_level_are_in_place(workloads_planned):
    for name in ("cnn", "rnn"):
        program, _ = workloads_planned[name]
        for variable, value in program.updates:
            kernel = program.fusion.kernels[kernel_of(program, value)]
            if kernel.level.get(value) == "row":
                assert program.memory.variable_writes[value] == "inplace", value


def test_report_matches_the_plan(workloads_planned):
    program, _ = workloads_planned["cnn"]
    plan = program.memory
    report = memplan(program)
    assert report == program.memory.report()
    assert report["arena_bytes"] == plan.arena_bytes and report["inplace"] == len(plan.inplace)
    text = program.memory.describe()
    assert "arena" in text and "lower bound" in text and "relu" in text


# -- hand graphs ------------------------------------------------------------------------

def test_a_chain_of_elementwise_kernels_reuses_memory():
    """tanh(h @ w) / sum(tanh(...)**2), three times: the division is an elementwise
    kernel of its own (it waits for a full reduction) that writes over the tanh it
    reads, which wrote over the matmul."""
    with gc.Graph():
        x = gc.placeholder((64, 64), name="x")
        h = x
        for i in range(3):
            w = gc.variable(rng(i).standard_normal((64, 64)).astype("float32") * 0.1)
            h = gc.tanh(h @ w)
            h = h / gc.sum(h * h)
        program = hand_program(h, [x])
    plan, kernels = program.memory, program.fusion.kernels
    loop_kernels = [k for k in kernels if k.library is None]
    assert loop_kernels
    in_loop_kernels = [(o, i) for o, i in plan.inplace
                       if kernels[kernel_of(program, o)].library is None]
    assert in_loop_kernels and all(o.shape == i.shape for o, i in in_loop_kernels)
    layer = 64 * 64 * 4
    assert plan.arena_bytes < plan.naive_bytes and plan.arena_bytes <= 2 * layer + 128
    assert_consistent(plan)
    assert_simulation_matches(program, [rng(1).standard_normal((64, 64)).astype("float32")])


def test_a_deep_forward_chain_needs_two_activations():
    with gc.Graph():
        x = gc.placeholder((32, 64), name="x")
        h = x
        for i in range(6):
            w = gc.variable(rng(i).standard_normal((64, 64)).astype("float32") * 0.1)
            b = gc.variable(np.zeros(64, "float32"))
            h = gc.relu(h @ w + b)
        program = hand_program(h, [x])
    plan = program.memory
    layer = 32 * 64 * 4
    assert len(plan.inplace) == 6                               # relu over each matmul
    assert plan.lower_bound == 2 * layer and plan.arena_bytes == 2 * layer
    assert plan.naive_bytes == 12 * layer
    assert_consistent(plan)
    assert_simulation_matches(program, [rng(9).standard_normal((32, 64)).astype("float32")])


def test_matmul_bias_relu_writes_relu_over_the_matmul():
    with gc.Graph():
        x = gc.placeholder((16, 32), name="x")
        w = gc.variable(rng(0).standard_normal((32, 8)).astype("float32"), name="w")
        b = gc.variable(rng(1).standard_normal(8).astype("float32"), name="b")
        program = hand_program(gc.relu(x @ w + b), [x])
    plan = program.memory
    (kernel,) = program.fusion.kernels
    (relu,) = program.outputs
    assert kernel.library.op.name == "matmul" and kernel.level[relu] == ELEMENT
    assert plan.inplace == [(relu, kernel.library)]
    assert plan.buffers[relu].shares is kernel.library
    assert plan.buffers[relu].offset == plan.buffers[kernel.library].offset
    assert plan.arena_bytes == plan.lower_bound == 16 * 8 * 4
    assert plan.naive_bytes == 2 * 16 * 8 * 4
    assert_consistent(plan)
    assert_simulation_matches(program, [rng(2).standard_normal((16, 32)).astype("float32")])


def test_a_library_output_read_later_is_not_overwritten():
    with gc.Graph():
        x = gc.placeholder((16, 32), name="x")
        w = gc.variable(rng(0).standard_normal((32, 8)).astype("float32"), name="w")
        m = x @ w
        program = hand_program([gc.relu(m), m], [x])      # the caller reads the matmul too
    plan = program.memory
    assert plan.inplace == []
    assert_consistent(plan)


def test_no_in_place_through_a_transposing_read():
    """relu(m.T)-like reads do not take m's buffer: the output's point p reads another
    point of m."""
    with gc.Graph():
        x = gc.placeholder((16, 16), name="x")
        w = gc.variable(rng(0).standard_normal((16, 16)).astype("float32"), name="w")
        m = x @ w
        program = hand_program(gc.exp(m) + gc.transpose(m), [x])
    plan = program.memory
    for out, taken in plan.inplace:
        kernel = program.fusion.kernels[kernel_of(program, out)]
        assert kernel.level[out] == ELEMENT
        assert not any(u.op.name == "transpose" for u in program.graph.users(taken))
    assert_simulation_matches(program, [rng(3).standard_normal((16, 16)).astype("float32")])


def test_old_value_read_after_the_update_kernel_forces_a_copy():
    """updates={w: w - 0.1 g} while the output reads w * 2 in a kernel that runs after
    the one computing the new value (it needs sum(x @ new))."""
    with gc.Graph():
        x = gc.placeholder((32, 16), name="x")
        g = gc.placeholder((16, 8), name="g")
        w = gc.variable(rng(0).standard_normal((16, 8)).astype("float32"), name="w")
        new = w - 0.1 * g
        out = w * 2.0 * gc.sum(x @ new)
        program = hand_program(out, [x, g], {w: new})
    plan = program.memory
    (variable, value), = program.updates
    assert max(readers_of(program, variable)) > kernel_of(program, value)
    assert plan.variable_writes[value] == "copy" and value in plan.buffers
    assert plan.buffers[value].end == plan.steps                 # copied after the last kernel
    assert_consistent(plan)
    feeds = [rng(4).standard_normal((32, 16)).astype("float32"),
             rng(5).standard_normal((16, 8)).astype("float32")]
    assert_simulation_matches(program, feeds)


def test_old_value_read_by_a_later_library_kernel_forces_a_copy():
    with gc.Graph():
        g = gc.placeholder((8, 4), name="g")
        w = gc.variable(rng(0).standard_normal((8, 4)).astype("float32"), name="w")
        new = w - 0.1 * g
        program = hand_program(new @ gc.transpose(w), [g], {w: new})
    (variable, value), = program.updates
    assert max(readers_of(program, variable)) > kernel_of(program, value)
    assert program.memory.variable_writes[value] == "copy"
    assert_simulation_matches(program, [rng(6).standard_normal((8, 4)).astype("float32")])


def test_old_value_read_in_the_same_kernel_point_by_point_is_in_place():
    """sum(w * 2) fuses into the kernel computing w's update and reads w[p] before p is
    written: in place is safe there."""
    with gc.Graph():
        x = gc.placeholder((32, 16), name="x")
        g = gc.placeholder((16, 8), name="g")
        w = gc.variable(rng(0).standard_normal((16, 8)).astype("float32"), name="w")
        new = w - 0.1 * g
        out = (x @ new) * 2.0 + gc.sum(w * 2.0)
        program = hand_program(out, [x, g], {w: new})
    (variable, value), = program.updates
    assert readers_of(program, variable) == [kernel_of(program, value)]
    assert program.memory.variable_writes[value] == "inplace"
    feeds = [rng(4).standard_normal((32, 16)).astype("float32"),
             rng(5).standard_normal((16, 8)).astype("float32")]
    assert_simulation_matches(program, feeds)


def test_a_variable_output_is_read_at_the_end_so_its_update_is_a_copy():
    with gc.Graph():
        g = gc.placeholder((8,), name="g")
        w = gc.variable(np.arange(8, dtype="float32"), name="w")
        program = hand_program([w, gc.sum(g)], [g], {w: w - g})
    (variable, value), = program.updates
    assert program.memory.variable_writes[value] == "copy"
    assert_simulation_matches(program, [rng(7).standard_normal(8).astype("float32")])


def test_one_hot_after_the_update_kernel_forces_a_copy():
    """A label out of range fails the call after w's new value is computed: w must
    still hold its old value, so the new one waits in the arena."""
    with gc.Graph():
        x = gc.placeholder((32, 16), name="x")
        g = gc.placeholder((16, 8), name="g")
        y = gc.placeholder((32,), "int64", name="y")
        w = gc.variable(np.ones((16, 8), np.float32), name="w")
        new = w * 0.5 - g
        out = gc.sum(gc.one_hot(y, 8) * (x @ new))
        program = hand_program(out, [x, g, y], {w: new})
    plan = program.memory
    (variable, value), = program.updates
    assert plan.fallible and max(plan.fallible) >= kernel_of(program, value)
    assert any(n.op.name == "one_hot" for i in plan.fallible
               for n in program.fusion.kernels[i].all_nodes)
    assert plan.variable_writes[value] == "copy"
    feeds = [rng(4).standard_normal((32, 16)).astype("float32"),
             rng(5).standard_normal((16, 8)).astype("float32"), rng(6).integers(0, 8, 32)]
    assert_simulation_matches(program, feeds)


def test_one_hot_before_the_update_kernel_allows_in_place():
    with gc.Graph():
        x = gc.placeholder((32, 8), name="x")
        y = gc.placeholder((32,), "int64", name="y")
        w = gc.variable(np.ones((8, 8), np.float32), name="w")
        loss = gc.nn.cross_entropy(x @ w, y)
        (gw,) = gc.grad(loss, [w])
        program = hand_program(loss, [x, y], {w: w - 0.1 * gw})
    plan = program.memory
    (variable, value), = program.updates
    assert plan.fallible and max(plan.fallible) < kernel_of(program, value)
    assert plan.variable_writes[value] == "inplace"
    feeds = [rng(4).standard_normal((32, 8)).astype("float32"), rng(6).integers(0, 8, 32)]
    assert_simulation_matches(program, feeds)


def test_swapped_variables_are_copies():
    with gc.Graph():
        g = gc.placeholder((4,), name="g")
        a = gc.variable(np.arange(4, dtype="float32"), name="a")
        b = gc.variable(np.arange(4, 8, dtype="float32"), name="b")
        program = hand_program(gc.sum(g), [g], {a: b, b: a})
    plan = program.memory
    assert all(how == "copy" for how in plan.variable_writes.values())
    assert_simulation_matches(program, [np.ones(4, "float32")])


def test_one_value_updates_one_variable_in_place_and_is_copied_to_the_other():
    with gc.Graph():
        g = gc.placeholder((4,), name="g")
        a = gc.variable(np.arange(4, dtype="float32"), name="a")
        b = gc.variable(np.arange(4, 8, dtype="float32"), name="b")
        new = a * b + g
        program = hand_program(gc.sum(g), [g], {a: new, b: new})
    plan = program.memory
    (a, value), (b, same) = program.updates
    assert same is value and plan.writes == [(a, value, "inplace"), (b, value, "copy")]
    assert plan.variable_writes[value] == "inplace"
    assert plan.location(value) == ("variable", a)
    assert plan.variable_copies == [(b, value)]
    assert_simulation_matches(program, [np.ones(4, "float32")])


def test_without_in_place_variables_every_update_is_a_copy(workloads_planned):
    program, feeds = workloads_planned["mlp"]
    try:
        report = memplan(program, inplace_variables=False)
        assert report["variable_copies"] == 12 and report["variables_inplace"] == 0
        assert_consistent(program.memory)
        assert_simulation_matches(program, feeds)
    finally:
        memplan(program)


def test_the_simulation_notices_a_broken_plan(workloads_planned):
    """The simulation is a real check: every buffer at offset 0 gives wrong values."""
    program, feeds = workloads_planned["mlp"]
    try:
        for buffer in program.memory.buffers.values():
            buffer.offset = 0
        with pytest.raises(AssertionError):
            assert_simulation_matches(program, feeds)
    finally:
        memplan(program)


def test_a_program_without_kernels_has_an_empty_arena():
    with gc.Graph():
        w = gc.variable(np.ones(3, "float32"), name="w")
        program = hand_program(w, [])
    plan = program.memory
    assert plan.buffers == {} and plan.arena_bytes == plan.lower_bound == plan.naive_bytes == 0
    (output,) = program.outputs
    assert plan.location(output) == ("variable", output)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_graphs_plan_soundly(data):
    """The differential test's random graphs (loss and gradients): a consistent plan
    whose simulation computes what the reference computes."""
    with gc.Graph("memplan_random"):
        case = data.draw(random_graphs(), label="case")
        program = hand_program(case.outputs, case.placeholders)
    assert schedule_is_valid(program)
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    feeds = [np.random.default_rng(seed).uniform(-2, 2, p.shape).astype(np.float32)
             for p in program.inputs]
    assert_consistent(program.memory)
    assert_simulation_matches(program, feeds, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_graphs_with_variable_updates_plan_soundly(data):
    """As above, with a variable per placeholder updated from its gradient and read
    again by an output: in place where the plan says so, the values stay right."""
    with gc.Graph("memplan_random_updates"):
        case = data.draw(random_graphs(), label="case")
        loss, grads = case.outputs[0], case.outputs[1:]
        seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
        values = np.random.default_rng(seed)
        variables = [gc.variable(values.uniform(-1, 1, p.shape).astype(np.float32))
                     for p in case.placeholders]
        updates = {v: v * 0.5 + g for v, g in zip(variables, grads)}
        late = [gc.sum(v * loss) for v in variables[:data.draw(st.integers(0, len(variables)))]]
        program = hand_program([loss] + late, case.placeholders, updates)
    assert schedule_is_valid(program)
    feeds = [values.uniform(-2, 2, p.shape).astype(np.float32) for p in program.inputs]
    assert_consistent(program.memory)
    assert_simulation_matches(program, feeds, rtol=1e-4, atol=1e-4)
