"""Shared test tools: run a graph on the reference device, and check gradients
(and Hessian-vector products) against central finite differences in float64."""
import numpy as np

import graphc as gc


def rng(seed=0):
    return np.random.default_rng(seed)


def np_log_softmax(x, axis):
    """log_softmax in float64 (scipy's logsumexp)."""
    from scipy import special
    x = np.asarray(x, np.float64)
    return x - special.logsumexp(x, axis=axis, keepdims=True)


def np_softmax(x, axis):
    return np.exp(np_log_softmax(x, axis))


def evaluate(outputs, feeds=None, device="reference"):
    """Values of `outputs` (a Tensor or list) with {placeholder: array} feeds."""
    feeds = feeds or {}
    step = gc.compile(outputs, inputs=list(feeds), device=device)
    return step(*feeds.values())


def _scalarize(y, seed):
    """y itself if scalar, else sum(y * fixed random weights): a random projection."""
    if y.shape == ():
        return y
    weights = rng(seed).standard_normal(y.shape)
    return gc.sum(y * gc.constant(weights.astype(y.dtype)))


def _placeholders(arrays):
    return [gc.placeholder(a.shape, a.dtype, name=f"in{i}") for i, a in enumerate(arrays)]


def central_differences(f, arrays, index, eps):
    """d f / d arrays[index], elementwise, by central differences."""
    base = [a.copy() for a in arrays]
    out = np.zeros_like(base[index])
    flat = base[index].reshape(-1)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + eps
        up = f(*base)
        flat[k] = keep - eps
        down = f(*base)
        flat[k] = keep
        out.reshape(-1)[k] = (up - down) / (2 * eps)
    return out


def relative_error(a, b):
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-8)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def check_grad(build, arrays, wrt=None, eps=1e-6, tol=1e-6, seed=0):
    """Assert gc.grad of build(*placeholders) matches central differences.

    arrays: float64 inputs (integer arrays are fed but not differentiated).
    wrt: indices to check (default: every float input). Returns the errors.
    """
    arrays = [np.asarray(a) for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else wrt
    phs = _placeholders(arrays)
    y = _scalarize(build(*phs), seed)
    grads = gc.grad(y, [phs[i] for i in wrt])
    analytic = gc.compile(grads, inputs=phs, device="reference")(*arrays)
    value = gc.compile(y, inputs=phs, device="reference")
    f = lambda *xs: float(value(*xs))  # noqa: E731
    errors = []
    for g, i in zip(analytic, wrt):
        numeric = central_differences(f, arrays, i, eps)
        err = relative_error(g, numeric)
        assert err < tol, f"input {i}: relative error {err:.3g} (analytic {g}, numeric {numeric})"
        errors.append(err)
    return errors


def check_hvp(build, arrays, eps=1e-5, tol=1e-6, seed=1):
    """Assert grad of grad: H v (built symbolically) matches differences of the gradient."""
    arrays = [np.asarray(a, np.float64) for a in arrays]
    phs = _placeholders(arrays)
    y = _scalarize(build(*phs), seed)
    grads = gc.grad(y, phs)
    vs = [rng(seed + 10 + i).standard_normal(a.shape) for i, a in enumerate(arrays)]
    dot = gc.sum(gc.stack([gc.sum(g * gc.constant(v)) for g, v in zip(grads, vs)]))
    hvp = gc.compile(gc.grad(dot, phs), inputs=phs, device="reference")(*arrays)
    gradient = gc.compile(grads, inputs=phs, device="reference")
    up = gradient(*[a + eps * v for a, v in zip(arrays, vs)])
    down = gradient(*[a - eps * v for a, v in zip(arrays, vs)])
    for i, (h, u, d) in enumerate(zip(hvp, up, down)):
        err = relative_error(h, (u - d) / (2 * eps))
        assert err < tol, f"input {i}: HVP relative error {err:.3g}"


def load_workloads():
    """benchmarks/workloads.py (W1-W5 as graphs), for tests that assert on them."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "workloads.py"
    spec = importlib.util.spec_from_file_location("graphc_bench_workloads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_workloads():
    """W1-W5 at test sizes: {name: a function building the workload in the current graph}."""
    w = load_workloads()
    return {
        "W1 mlp": lambda: w.mlp(batch=8),
        "W2 cnn": lambda: w.cnn(batch=2),
        "W3 rnn": lambda: w.rnn(batch=2, steps=3),
        "W4 fusion": lambda: w.fusion(n=4096),
        "W5 latency": lambda: w.mlp(batch=1, train=False),
    }
