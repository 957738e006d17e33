"""The CUDA backend on a real GPU, in one command: correctness at full size, then
step times against PyTorch.

    python benchmarks/gpu_check.py [--out FILE.md] [--workloads mlp,cnn,fusion,rnn]
    python benchmarks/gpu_check.py --simulate --small   # the same path, tiny, without a GPU

(a) Correctness: each workload (W1-W4 of benchmarks/workloads.py) is built twice
    from the same seed, compiled with device="cuda" and device="reference", and
    run for CHECK_STEPS (3) steps on the same batch (on the GPU the second step
    records the CUDA graph and the third replays it). Compared: every output of
    the last step (its loss, W4's dx) and every updated variable (parameters
    and velocities). An array passes when
    max |cuda - reference| <= RTOL * max |reference| + ATOL.
(b) Speed: the median step time of each workload over --steps steps (>= 20)
    after --warmup steps (3), each step between two cuda.synchronize() calls;
    and, when torch with CUDA imports, PyTorch eager on the same workload (the
    same initial values and batch, SGD with momentum 0.9). Both steps return
    their outputs to the host (graphc's API returns NumPy arrays; the torch
    step copies the same outputs with .cpu()). Both keep the batch on the GPU
    (graphc is fed numba.cuda arrays, copied on the device into its buffers);
    graphc is also timed with NumPy feeds (copied over the bus each step) and
    launching kernel by kernel instead of replaying its CUDA graph.
(c) A markdown table (date, GPU, versions; per workload: correctness, compile
    plus first step, whether the step ran as a graph, graphc ms in the three
    ways, torch ms, graphc / torch) to --out or stdout.

Exit status: 0 when every correctness check passes, 1 when one fails, 2 when
there is no GPU (or no numba.cuda) or an argument is wrong. --simulate runs under Numba's CUDA
simulator (Python threads: use --small); nothing is built or installed here
beyond what graphc's own compile does (Numba JIT-compiles each kernel).
It reads nothing from outside the repository.
"""
import argparse
import datetime
import os
import statistics
import sys
import time
import traceback
import types
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RTOL, ATOL = 1e-4, 1e-6     # float32, summed in another order on each device
CHECK_STEPS = 3             # compared after 3 steps: the 2nd records the CUDA graph, the 3rd
                            # replays it
NAMES = {"mlp": "W1 mlp", "cnn": "W2 cnn", "rnn": "W3 rnn", "fusion": "W4 fusion"}
TORCH_NOTE = "PyTorch eager, CUDA"


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the markdown table here (default: stdout)")
    parser.add_argument("--workloads", default="mlp,cnn,fusion,rnn",
                        help="comma-separated, in the order run (W3 compiles longest, so "
                        "last), of: " + ", ".join(NAMES))
    parser.add_argument("--steps", type=int, help="timed steps (default 20; --small: 3)")
    parser.add_argument("--warmup", type=int, help="warm-up steps (default 3; --small: 1)")
    parser.add_argument("--small", action="store_true", help="tiny sizes (for --simulate)")
    parser.add_argument("--simulate", action="store_true",
                        help="run under Numba's CUDA simulator (no GPU needed)")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in NAMES]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(NAMES)}")
    if args.steps is None:
        args.steps = 3 if args.small else 20
    if args.warmup is None:
        args.warmup = 1 if args.small else 3
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps must be at least 1 and --warmup at least 0, got {args.steps} "
                     f"and {args.warmup}")
    return args


# -- the device ---------------------------------------------------------------------

def load_cuda(simulate):
    """numba.cuda on a GPU (or the simulator when asked), else exit 2 with why."""
    if simulate:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"      # before numba is first imported
        warnings.filterwarnings("ignore", category=RuntimeWarning)   # NumPy scalars warn
        sys.setswitchinterval(5e-5)     # the simulator's threads hand over the GIL often
    elif os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        fail("NUMBA_ENABLE_CUDASIM is set: unset it to check a GPU, or pass --simulate")
    try:
        from numba import cuda
    except Exception as exc:           # numba-cuda missing or its bindings broken
        fail(f"numba.cuda does not import ({type(exc).__name__}: {exc}); "
             "pip install 'graphc[cuda]' before running this on the GPU machine")
    from numba.core.errors import NumbaPerformanceWarning
    warnings.filterwarnings("ignore", category=NumbaPerformanceWarning)   # small grids
    if not cuda.is_available():
        fail("no CUDA GPU found (numba.cuda.is_available() is False): this check needs one. "
             "Without a GPU, `python benchmarks/gpu_check.py --simulate --small` runs the "
             "same code path at tiny sizes under Numba's CUDA simulator")
    return cuda


def fail(message):
    print(f"gpu_check: {message}", file=sys.stderr)
    sys.exit(2)


def gpu_name(cuda, simulate):
    if simulate:
        return "Numba CUDA simulator (no GPU)"
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    return f"{name} (compute capability {'.'.join(map(str, device.compute_capability))})"


# -- the workloads ------------------------------------------------------------------

def load_workloads():
    sys.path.insert(0, HERE)
    import workloads
    return workloads


def build(kind, small):
    """The Workload W1-W4 of `kind` in the current default graph; small: tiny sizes."""
    w = load_workloads()
    if not small:
        return w.ALL[kind]()
    if kind == "mlp":
        return tiny_mlp(w)
    if kind == "cnn":
        return tiny_cnn(w)
    if kind == "rnn":
        return w.rnn(batch=2, steps=3, vocab=11, embed=4, hidden=5)
    return w.fusion(n=100)


def _variable(gc, rng, shape, fan_in, name):
    bound = 1.0 / np.sqrt(fan_in)
    return gc.variable(rng.uniform(-bound, bound, shape).astype(np.float32), name=name)


def tiny_mlp(w, sizes=(12, 8, 6, 4), batch=4):
    """W1's structure (Linear-ReLU-Linear-ReLU-Linear, cross-entropy) at tiny sizes."""
    import graphc as gc
    rng = np.random.default_rng(0)
    x, y = gc.placeholder((None, sizes[0]), name="x"), gc.placeholder((None,), "int64", name="y")
    h, params = x, []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        weight = _variable(gc, rng, (fan_in, fan_out), fan_in, f"fc{i + 1}_w")
        bias = _variable(gc, rng, (fan_out,), fan_in, f"fc{i + 1}_b")
        h = (gc.relu(h) if i else h) @ weight + bias
        params += [weight, bias]
    loss = gc.nn.cross_entropy(h, y)
    feeds = [rng.standard_normal((batch, sizes[0])).astype(np.float32),
             rng.integers(0, sizes[-1], batch)]
    return w.Workload("W1 mlp", [x, y], feeds, [loss], params,
                      w.sgd_momentum(params, gc.grad(loss, params)))


def tiny_cnn(w, batch=2, image=8, c1=2, c2=3, hidden=5, classes=4):
    """W2's structure (conv, ReLU, conv, ReLU, max pool 2, Linear, ReLU, Linear) tiny."""
    import graphc as gc
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 1, image, image), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    flat = c2 * ((image - 4) // 2) ** 2
    shapes = [((c1, 1, 3, 3), 9), ((c1,), 9), ((c2, c1, 3, 3), 9 * c1), ((c2,), 9 * c1),
              ((flat, hidden), flat), ((hidden,), flat), ((hidden, classes), hidden),
              ((classes,), hidden)]
    params = [_variable(gc, rng, shape, fan_in, f"p{i}") for i, (shape, fan_in)
              in enumerate(shapes)]
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    h = gc.relu(gc.nn.conv2d(gc.relu(gc.nn.conv2d(x, w1, b1)), w2, b2))
    h = gc.reshape(gc.nn.max_pool2d(h, 2), (-1, flat))
    loss = gc.nn.cross_entropy(gc.relu(h @ w3 + b3) @ w4 + b4, y)
    feeds = [rng.standard_normal((batch, 1, image, image)).astype(np.float32),
             rng.integers(0, classes, batch)]
    return w.Workload("W2 cnn", [x, y], feeds, [loss], params,
                      w.sgd_momentum(params, gc.grad(loss, params)))


# -- (a) correctness ----------------------------------------------------------------

def run_steps(kind, small, device, steps=CHECK_STEPS):
    """`steps` steps of a fresh build of workload `kind` on `device`: a namespace of the
    last step's outputs, the updated variables by name, the executable, the feeds, the
    parameters' initial values, the seconds the first call took (compile included) and
    whether the step ran as a recorded CUDA graph (runtime/cuda/graph.py: recorded on
    the second call, replayed after)."""
    import graphc as gc
    with gc.Graph(f"{kind} {device}"):
        workload = build(kind, small)
        initial = [np.array(p.value) for p in workload.params]
        step = workload.compile(device=device)
        start = time.perf_counter()
        outputs = step(*workload.feeds)
        seconds = time.perf_counter() - start
        for _ in range(steps - 1):
            outputs = step(*workload.feeds)
        variables = {var.name: np.array(var.value) for var in workload.updates}
        graph = any(getattr(plan, "graph", None) is not None for plan in step._plans.values())
    return types.SimpleNamespace(outputs=outputs, variables=variables, step=step,
                                 feeds=workload.feeds, initial=initial, first_s=seconds,
                                 graph=graph)


def kernel_by_kernel(kind, small):
    """The workload's cuda step with CUDA graphs off (GRAPHC_CUDA_GRAPHS=0), to time
    what recording the step saves; its kernels are already compiled in this process."""
    os.environ["GRAPHC_CUDA_GRAPHS"] = "0"
    try:
        return run_steps(kind, small, "cuda", steps=1)
    finally:
        del os.environ["GRAPHC_CUDA_GRAPHS"]


def compare(got, want):
    """(worst normwise error, the array it is in, passed) of two run_steps results."""
    pairs = [(f"output {i}", g, w) for i, (g, w) in enumerate(zip(got.outputs, want.outputs))]
    pairs += [(name, got.variables[name], value) for name, value in want.variables.items()]
    worst, where, passed = 0.0, "", True
    for name, mine, theirs in pairs:
        mine, theirs = np.asarray(mine, np.float64), np.asarray(theirs, np.float64)
        scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
        error = float("inf")
        if mine.shape == theirs.shape:
            error = float(np.max(np.abs(mine - theirs))) if theirs.size else 0.0
            error = error if np.isfinite(error) else float("inf")
        passed &= error <= RTOL * scale + ATOL
        relative = error / scale if scale else error
        if relative >= worst:
            worst, where = relative, name
    return worst, where, passed


# -- (b) speed ----------------------------------------------------------------------

def median_ms(step, synchronize, steps, warmup):
    """Median wall time of one step, synchronized before and after, in ms."""
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def load_torch():
    """torch, when it imports and sees a CUDA device; else None."""
    try:
        import torch
    except Exception:
        return None
    return torch if torch.cuda.is_available() else None


def torch_step(torch, kind, run):
    """A PyTorch eager step of a workload on the GPU, from the initial values and with the
    batch of `run` (a run_steps result)."""
    import torch.nn.functional as F
    dev = torch.device("cuda")
    values = [torch.tensor(value, device=dev, requires_grad=True) for value in run.initial]
    feeds = [torch.from_numpy(np.array(f)).to(dev) for f in run.feeds]
    extra_outputs = []
    if kind == "mlp":
        def loss_fn():
            h = feeds[0]
            for i in range(0, len(values), 2):
                h = (torch.relu(h) if i else h) @ values[i] + values[i + 1]
            return F.cross_entropy(h, feeds[1])
    elif kind == "cnn":
        def loss_fn():
            w1, b1, w2, b2, w3, b3, w4, b4 = values
            h = F.relu(F.conv2d(F.relu(F.conv2d(feeds[0], w1, b1)), w2, b2))
            h = torch.flatten(F.max_pool2d(h, 2), 1)
            return F.cross_entropy(F.relu(h @ w3 + b3) @ w4 + b4, feeds[1])
    elif kind == "rnn":
        loss_fn, values = _torch_rnn(torch, values, feeds)
    else:
        x = feeds[0].requires_grad_(True)
        extra_outputs.append(x)

        def loss_fn():
            a, b = values
            return F.gelu(x * a + b, approximate="tanh").sum()
    optimizer = torch.optim.SGD(values, lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        for fed in extra_outputs:
            fed.grad = None
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return [loss.item()] + [fed.grad.cpu() for fed in extra_outputs]
    return step


def _torch_rnn(torch, values, feeds):
    """W3 with torch.nn.RNN (cuDNN), graphc's (in, out) weights transposed into it."""
    import torch.nn.functional as F
    table, w_ih, w_hh, b_h, w_out, b_out = values
    rnn = torch.nn.RNN(w_ih.shape[0], w_ih.shape[1], nonlinearity="tanh",
                       batch_first=True).to(feeds[0].device)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_ih.T)
        rnn.weight_hh_l0.copy_(w_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()

    def loss_fn():
        _, h = rnn(F.embedding(feeds[0], table))
        logits = (h[0] @ w_out + b_out).reshape(-1)
        return F.binary_cross_entropy_with_logits(logits, feeds[1])
    return loss_fn, [table, *rnn.parameters(), w_out, b_out]


# -- (c) the report -----------------------------------------------------------------

def check_workload(kind, args, cuda, torch):
    """One row of the table: correctness, then times."""
    got = run_steps(kind, args.small, "cuda")
    error, where, passed = compare(got, run_steps(kind, args.small, "reference"))
    on_device = [cuda.to_device(feed) for feed in got.feeds]    # as torch keeps its batch
    graphc_ms = median_ms(lambda: got.step(*on_device), cuda.synchronize,
                          args.steps, args.warmup)
    host_ms = median_ms(lambda: got.step(*got.feeds), cuda.synchronize,
                        args.steps, args.warmup)
    eager = kernel_by_kernel(kind, args.small)
    eager_ms = median_ms(lambda: eager.step(*on_device), cuda.synchronize,
                         args.steps, args.warmup)
    torch_ms = None
    if torch is not None:
        torch_ms = median_ms(torch_step(torch, kind, got), torch.cuda.synchronize,
                             args.steps, args.warmup)
    return {"name": NAMES[kind], "passed": passed, "error": error, "where": where,
            "loss": float(np.ravel(got.outputs[0])[0]), "first_s": got.first_s,
            "graphc_ms": graphc_ms, "eager_ms": eager_ms, "host_ms": host_ms,
            "graph": got.graph,
            "torch_ms": torch_ms}


def versions(torch, simulate):
    import numba
    try:
        from importlib.metadata import version
        numba_cuda = version("numba-cuda")
    except Exception:
        numba_cuda = "?"
    torch_text = (f"torch {torch.__version__} (CUDA {torch.version.cuda})" if torch is not None
                  else "torch: not run under the simulator" if simulate
                  else "torch with CUDA not importable: no torch column")
    return f"numba {numba.__version__}, numba-cuda {numba_cuda}, {torch_text}"


def table(rows, args, gpu, versions_text):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    size = "tiny (--small)" if args.small else "full (benchmarks/workloads.py)"
    lines = [f"## graphc CUDA check, {now}", "",
             f"- GPU: {gpu}", f"- {versions_text}",
             f"- sizes: {size}; step time: median of {args.steps} synchronized steps after "
             f"{args.warmup} warm-up; torch: {TORCH_NOTE}",
             f"- correct: every output and updated variable after {CHECK_STEPS} steps within "
             f"{RTOL:g} x its largest reference magnitude (+{ATOL:g}) of device=\"reference\"",
             "- graphc ms: the batch on the GPU (fed as numba.cuda arrays, as torch keeps its "
             "batch there), the step one recorded CUDA graph (runtime/cuda/graph.py) where "
             "the graph column says yes; kernel by kernel: GRAPHC_CUDA_GRAPHS=0; host feeds: "
             "NumPy batches copied in every step",
             "", f"| workload | correct (worst error / scale, in) | loss at step {CHECK_STEPS} | "
             "compile + first step s | graph | graphc ms | kernel by kernel | host feeds | "
             "torch ms | graphc / torch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "crash" in r:
            lines.append(f"| {r['name']} | **ERROR** {r['crash']} | | | | | | | | |")
            continue
        verdict = "ok" if r["passed"] else "**FAILED**"
        torch_ms = f"{r['torch_ms']:.3f}" if r["torch_ms"] is not None else "n/a"
        ratio = f"{r['graphc_ms'] / r['torch_ms']:.2f}" if r["torch_ms"] else "n/a"
        lines.append(f"| {r['name']} | {verdict} ({r['error']:.1e}, {r['where']}) | "
                     f"{r['loss']:.6f} | {r['first_s']:.1f} | {'yes' if r['graph'] else 'no'} | "
                     f"{r['graphc_ms']:.3f} | {r['eager_ms']:.3f} | {r['host_ms']:.3f} | "
                     f"{torch_ms} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse(argv)
    started = time.perf_counter()
    cuda = load_cuda(args.simulate)
    torch = None if args.simulate else load_torch()
    gpu, versions_text = gpu_name(cuda, args.simulate), versions(torch, args.simulate)
    rows = []
    for kind in args.workloads:
        try:
            rows.append(check_workload(kind, args, cuda, torch))
        except Exception as exc:        # one broken workload must not hide the others
            traceback.print_exc()
            rows.append({"name": NAMES[kind], "passed": False,
                         "crash": f"{type(exc).__name__}: {exc}"[:200].replace("|", "/")})
        print(f"gpu_check: {kind} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if args.out:                    # the rows so far: a timeout still leaves a table
            with open(args.out, "w") as out:
                out.write(table(rows, args, gpu, versions_text))
    if not args.out:
        sys.stdout.write(table(rows, args, gpu, versions_text))
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
