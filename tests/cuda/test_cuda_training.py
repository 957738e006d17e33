"""Training on device="cuda": W1's and W2's steps (small) and a step with dropout
equal to the reference, variables resident on the device (no parameter crosses
the bus per step), shared with other executables, and left as they were by a
failed call."""
import numpy as np
import pytest

import graphc as gc
from graphc.errors import RuntimeFailure
from graphc.runtime.cuda import device

from small_cnn import cnn
from small_mlp import mlp, workloads

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # uint64 draws wrap


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def train(device_name, build=mlp, steps=3):
    with gc.Graph(device_name):
        gc.manual_seed(0)                   # the seeds of random nodes (dropout)
        workload, feeds = build()
        step = workload.compile(device=device_name)
        losses = [float(step(*feeds)[0]) for _ in range(steps)]
        return losses, [p.value for p in workload.params], step


def assert_trains_as_the_reference(build, rtol=1e-5, atol=1e-6):
    want_losses, want_params, _ = train("reference", build)
    losses, params, step = train("cuda", build)
    np.testing.assert_allclose(losses, want_losses, rtol=rtol)
    for got, want in zip(params, want_params):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return step


def test_w1_small_three_steps_equal_the_reference():
    step = assert_trains_as_the_reference(mlp)
    # 11: 2 of them cross_entropy's ignore_index (the count of kept labels, the masked one-hot)
    assert step.stats["device"] == "cuda" and step.stats["kernels"] == 11


def test_w2_small_cnn_three_steps_equal_the_reference():
    step = assert_trains_as_the_reference(cnn)
    plan = next(iter(step._plans.values()))
    ops = sorted(k.library.op.name for k in plan.fusion.kernels if k.library is not None)
    assert ops == ["conv2d", "conv2d", "conv2d_grad_input", "conv2d_grad_weight",
                   "conv2d_grad_weight", "matmul", "matmul", "matmul", "matmul", "matmul",
                   "matmul", "max_pool2d", "max_pool2d_grad"]


def mlp_with_dropout():
    """W1 small with dropout after the first layer: the masks change every step (the
    counter is a variable, advanced on the device)."""
    workload, feeds = mlp()
    x, y = workload.inputs
    w1, b1, w2, b2, w3, b3 = workload.params
    h = gc.nn.dropout(gc.relu(x @ w1 + b1), p=0.5)
    logits = gc.relu(h @ w2 + b2) @ w3 + b3
    loss = gc.nn.cross_entropy(logits, y)
    updates = workloads.sgd_momentum(workload.params, gc.grad(loss, workload.params))
    return workloads.Workload("W1 dropout", [x, y], feeds, [loss], workload.params,
                              updates), feeds


def test_a_step_with_dropout_trains_as_the_reference():
    step = assert_trains_as_the_reference(mlp_with_dropout)
    assert step.stats["library_kernels"] == 9      # 8 matmuls and the draw



def test_a_transformer_encoder_and_its_gradients_equal_the_reference():
    """Batched (N, H, L, D) matmuls, masked softmax, layer norms and the packed
    projection's slices, forward and backward (tiny: the simulator runs every thread)."""
    from compare import check, data
    gc.manual_seed(0)
    layer = gc.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                          batch_first=True)
    model = gc.nn.TransformerEncoder(layer, 2)
    x = gc.placeholder((2, 4, 8), name="x")
    pad = gc.placeholder((2, 4), "bool", name="pad")
    loss = gc.sum(model(x, src_key_padding_mask=pad) * gc.constant(data(2, 4, 8)))
    check([loss] + gc.grad(loss, model.parameters()),
          {x: data(2, 4, 8), pad: np.array([[False, False, True, True], [False] * 4])},
          rtol=1e-5, atol=2e-6)

def transfers_per_step(step, feeds, steps=2):
    step(*feeds)                                  # the first call uploads the variables
    before = device.TRANSFERS.copy()
    for _ in range(steps):
        step(*feeds)
    return {key: (device.TRANSFERS[key] - before[key]) / steps
            for key in device.TRANSFERS if len(key) == 2}


def test_a_step_moves_feeds_in_loss_out_and_no_parameter():
    workload, feeds = mlp()
    step = workload.compile(device="cuda")
    moved = transfers_per_step(step, feeds)
    assert moved.get(("h2d", "variable"), 0) == 0 and moved.get(("d2h", "variable"), 0) == 0
    # x and y in, the loss out, the label check's error flag read back
    assert {k: n for k, n in moved.items() if n} == \
        {("h2d", "feed"): 2, ("d2h", "output"): 1, ("d2h", "error"): 1}
    fc1 = workload.params[0]
    assert fc1.value.shape == (12, 8)             # reading a parameter fetches it, once
    assert transfers_per_step(step, feeds, steps=1).get(("d2h", "variable"), 0) == 0


def test_feeds_already_on_the_device_are_copied_there_not_over_the_bus():
    from numba import cuda
    workload, feeds = mlp()
    want = [float(workload.compile(device="cuda")(*feeds)[0]) for _ in range(1)]
    step = workload.compile(device="cuda")
    want += [float(step(*feeds)[0]) for _ in range(2)]
    again, _ = mlp()                        # the same initial values, in new variables
    step = again.compile(device="cuda")
    on_device = [cuda.to_device(feed) for feed in feeds]
    got = [float(step(*on_device)[0]) for _ in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    moved = transfers_per_step(step, on_device)
    assert {k: n for k, n in moved.items() if n} == \
        {("d2d", "feed"): 2, ("d2h", "output"): 1, ("d2h", "error"): 1}


def test_a_device_feed_is_checked_as_a_host_feed_is_and_refused_by_host_devices():
    from numba import cuda
    workload, feeds = mlp()
    step = workload.compile(device="cuda")
    with pytest.raises(gc.FeedError, match=r"expects dtype float32, got a CUDA array of "
                                           r"float64 \(device arrays are not converted"):
        step(cuda.to_device(feeds[0].astype("float64")), feeds[1])
    with pytest.raises(gc.FeedError, match=r"expects shape \(None, 12\), got \(8, 3\)"):
        step(cuda.to_device(feeds[0][:, :3].copy()), feeds[1])
    with pytest.raises(gc.FeedError, match="a CUDA array feed must be C-contiguous"):
        step(cuda.to_device(np.repeat(feeds[0], 2, axis=1))[:, ::2], feeds[1])
    on_cpu = workload.compile(device="cpu")
    with pytest.raises(gc.FeedError, match=r'device="cpu" reads host arrays: copy it to the '
                                           r"host first"):
        on_cpu(cuda.to_device(feeds[0]), feeds[1])


def test_variables_are_shared_with_other_executables_and_the_host():
    workload, feeds = mlp()
    train_step = workload.compile(device="cuda")
    w = workload.params[0]
    read_cpu = gc.compile([w], inputs=[], device="cpu")
    read_cuda = gc.compile([w], inputs=[], device="cuda")
    train_step(*feeds)
    np.testing.assert_array_equal(read_cpu()[0], read_cuda()[0])
    assert not np.array_equal(read_cpu()[0], workload.params[0].value * 0)
    new = np.full((12, 8), 0.5, "float32")
    train_step.load_state_dict({**train_step.state_dict(), w.name: new})
    np.testing.assert_array_equal(read_cuda()[0], new)   # the host's value is uploaded
    before = np.array(w.value, copy=True)
    train_step(*feeds)
    assert not np.array_equal(w.value, before)


def test_an_output_that_is_an_updated_variable_is_its_value_before_the_step():
    """Outputs were read after the step's variable copies: v itself, v * 1.0 and the
    min of a 0-d w came back updated (found by fuzzing under the simulator)."""
    results = {}
    for name in ("reference", "cuda"):
        v = gc.variable(np.arange(4, dtype="float32"))
        w = gc.variable(np.float32(0.3))
        a, b = gc.variable(np.float32(0.0)), gc.variable(np.float32(5.0))
        step = gc.compile([v, gc.min(w), a + 0.0, v * 1.0], inputs=[],
                          updates={v: v - 1.0, w: w * 2.0 + 1.0, a: b + 1.0, b: a * 2.0},
                          device=name)
        results[name] = [step(), step(), [v.value, w.value, a.value, b.value]]
    for want, got in zip(results["reference"], results["cuda"]):
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    assert results["cuda"][0][0].tolist() == [0, 1, 2, 3]


def test_a_failed_step_leaves_every_variable_as_it_was():
    workload, feeds = mlp()
    step = workload.compile(device="cuda")
    step(*feeds)
    before = {name: np.array(v, copy=True) for name, v in step.state_dict().items()}
    bad_labels = np.array([0, 1, 2, 9, 0, 1, 2, 3])
    with pytest.raises(RuntimeFailure, match="out of range for 4 classes"):
        step(feeds[0], bad_labels)
    for name, value in step.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    step(*feeds)                                  # and the next call runs
