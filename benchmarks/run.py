"""graphc beside its peers on the workloads W1-W5 (BENCHMARKS.md), from one invocation.

Every (system, workload) runs in a fresh process through ../shared/bench/peers.py,
which defines the workloads identically for every system. Systems alternate
within each round, and the table gives medians over rounds and the ratio
graphc / peer (below 1: graphc is faster). graphc's first step is measured
cold (empty cache folder) and warm (the same folder again, a new process).

Speed is worth nothing without the right numbers: in the first round the
hand-written NumPy implementation of peers.py also runs each workload, and every
system's loss after three updates (W5: its output) is compared with it. A
system that differs by more than 1e-4 relative is marked "wrong" in the table
(torch.compile's W2 once returned zero conv gradients: its first loss was right).

    python benchmarks/run.py                                  # graphc alone
    python benchmarks/run.py --peers-python /path/venv/bin/python --systems torch,jax

The peers live in their own virtual environment (pip install torch==2.13.0 jax
jaxlib pytensor); they are never dependencies of graphc.
"""
import argparse
import functools
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir, "shared", "bench", "peers.py"))
WORKLOADS = ["mlp", "cnn", "rnn", "fusion", "latency"]
AGREEMENT = 1e-4    # relative; correct float32 systems agree within about 4e-6 after three updates


@functools.lru_cache(maxsize=None)
def _peers_module():
    spec = importlib.util.spec_from_file_location("peers", PEERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_one(python, system, workload, cache_dir, timeout):
    """One (system, workload) in a fresh process, with peers.py's environment for it:
    every compile cache (graphc's, Numba's, inductor's, PyTensor's) under cache_dir,
    and PyTensor in float32."""
    env = _peers_module().child_env(system, workload, cache_dir)
    done = subprocess.run([python, PEERS, "run", system, workload], env=env, timeout=timeout,
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])
    return {"status": "failed", "error": (done.stderr or done.stdout)[-400:]}


def step_time(result):
    """ms per step (W5: microseconds per call)."""
    for key in ("step_ms_median", "latency_us_median"):
        if key in result:
            return result[key]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, of " + ",".join(WORKLOADS) + " (W1-W5)")
    parser.add_argument("--systems", default="", help="peers, e.g. torch,jax,torch_compile")
    parser.add_argument("--peers-python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {','.join(unknown)}; choose from {','.join(WORKLOADS)}")
    peers = [s for s in args.systems.split(",") if s]
    times = {}          # (system, workload) -> [step times]
    firsts = {}         # (system or graphc-warm, workload) -> [first step seconds]
    deviations = {}     # (system, workload) -> [relative deviation from NumPy's numbers]
    for round_ in range(args.rounds):
        for workload in workloads:
            one_round(workload, peers, args, (times, firsts, deviations), judged=round_ == 0)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    print_table(workloads, peers, times, firsts, args.rounds, deviations)


def one_round(workload, peers, args, record, judged):
    """Every system once on `workload`, each with its own empty caches, then graphc
    again on its now warm cache; with `judged`, NumPy's numbers first."""
    times, firsts, deviations = record
    cache = tempfile.mkdtemp(prefix="graphc-bench-")
    try:
        judge = run_one(args.peers_python, "numpy", workload, cache, args.timeout) if judged else None
        for system, python in [("graphc", sys.executable)] + [(p, args.peers_python) for p in peers]:
            result = run_one(python, system, workload, os.path.join(cache, system), args.timeout)
            if result.get("status") != "ok":
                print(f"{system} {workload}: {result.get('error', result)}", file=sys.stderr)
                continue
            times.setdefault((system, workload), []).append(step_time(result))
            firsts.setdefault((system, workload), []).append(result.get("first_step_s"))
            deviation = deviation_from(result, judge)
            if deviation is not None:
                deviations.setdefault((system, workload), []).append(deviation)
        warm = run_one(sys.executable, "graphc", workload, os.path.join(cache, "graphc"), args.timeout)
        if warm.get("status") == "ok":
            firsts.setdefault(("graphc warm", workload), []).append(warm["first_step_s"])
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def deviation_from(result, judge):
    """Relative deviation of a run's loss after three updates (W5: its output) from the judge's."""
    if not judge or judge.get("status") != "ok":
        return None
    if "losses" in result and "losses" in judge:
        return abs(result["losses"][3] - judge["losses"][3]) / abs(judge["losses"][3])
    if "out" in result and "out" in judge:
        scale = max(abs(v) for v in judge["out"])
        return max(abs(a - b) for a, b in zip(result["out"], judge["out"])) / scale
    return None


def _median(values):
    values = [v for v in values or [] if v is not None]
    return statistics.median(values) if values else None


def print_table(workloads, peers, times, firsts, rounds, deviations):
    print(f"median over {rounds} rounds; step ms (latency: us per call); first step s in ()")
    wrong = {key for key, values in deviations.items() if max(values) > AGREEMENT}
    header = f"{'workload':10} {'graphc':>18} " + " ".join(f"{p:>18} {'ratio':>6}" for p in peers)
    print(header)
    for workload in workloads:
        ours = _median(times.get(("graphc", workload)))
        cold, warm = _median(firsts.get(("graphc", workload))), _median(firsts.get(("graphc warm", workload)))
        cells = [f"{workload:10}", f"{_fmt(ours)} ({_fmt(cold)}/{_fmt(warm)})".rjust(18)]
        if ("graphc", workload) in wrong:
            cells[1] += " WRONG"
        for peer in peers:
            theirs = _median(times.get((peer, workload)))
            first = _median(firsts.get((peer, workload)))
            ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
            if (peer, workload) in wrong:
                ratio = "wrong"
            cells.append(f"{_fmt(theirs)} ({_fmt(first)})".rjust(18) + f" {ratio:>6}")
        print(" ".join(cells))
    print("graphc's first step: (cold / warm cache); ratio = graphc / peer")
    print(f"wrong: loss after three updates (latency: output) off NumPy's by more than {AGREEMENT:g} relative")
    for (system, workload), values in sorted(deviations.items()):
        print(f"  {system:15} {workload:8} deviation {max(values):.1e}" + ("  WRONG" if (system, workload) in wrong else ""))


def _fmt(value):
    return "-" if value is None else f"{value:.3g}"


if __name__ == "__main__":
    main()
