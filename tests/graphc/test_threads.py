"""Executables called from several threads at once (a server's thread pool, a
data thread that also evaluates): each call's outputs are its own, and training
steps run whole, one at a time. Before the lock in graphc/executable.py, four
threads calling one cpu inference step got another call's outputs within 200
calls each."""
import threading

import numpy as np
import pytest

import graphc as gc

THREADS, CALLS = 4, 40


def run_in_threads(work):
    """work(thread index) in THREADS threads; the exceptions they raised."""
    failures = []

    def guarded(k):
        try:
            work(k)
        except Exception as error:      # noqa: BLE001  (reported to the test below)
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_concurrent_calls_each_get_their_own_outputs(device):
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 64), name="x")
    w = gc.variable(rng.standard_normal((64, 32)).astype(np.float32), name="w")
    step = gc.compile([gc.tanh(x @ w) * 2.0], inputs=[x], device=device)
    batches = [rng.standard_normal((16, 64)).astype(np.float32) for _ in range(THREADS)]
    want = [step(b)[0] for b in batches]

    def work(k):
        for call in range(CALLS):
            i = (k + call) % THREADS
            np.testing.assert_array_equal(step(batches[i])[0], want[i])

    assert run_in_threads(work) == []


def test_training_steps_from_several_threads_run_whole():
    """Every step applies the same update to the batch it is fed (the same batch), so
    however the threads interleave, THREADS * CALLS steps give the weights that as
    many steps in a row give, bit for bit, if each step runs whole."""
    rng = np.random.default_rng(1)
    x_value = rng.standard_normal((32, 20)).astype(np.float32)
    y_value = rng.integers(0, 5, 32)
    start = rng.standard_normal((20, 5)).astype(np.float32)
    finals = []
    for threads in (1, THREADS):
        x = gc.placeholder((None, 20), name="x")
        y = gc.placeholder((None,), "int64", name="y")
        w = gc.variable(start.copy(), name="w")
        loss = gc.nn.cross_entropy(x @ w, y)
        (g,) = gc.grad(loss, [w])
        step = gc.compile([loss], inputs=[x, y], updates={w: w - 0.1 * g}, device="cpu")
        if threads == 1:
            for _ in range(THREADS * CALLS):
                step(x_value, y_value)
        else:
            assert run_in_threads(lambda k: [step(x_value, y_value) for _ in range(CALLS)]) == []
        finals.append(w.value)
    np.testing.assert_array_equal(finals[1], finals[0])
