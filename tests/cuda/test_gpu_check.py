"""benchmarks/gpu_check.py, the one command for a real GPU: its whole path (both
devices, the comparison, the timing, the table) at tiny sizes under the simulator,
and its refusal without a GPU."""
import os
import re
import subprocess
import sys
import types

import pytest

from cuda_env import GPU

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "gpu_check.py")


def run(args, tmp_path, simulator=True):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["GRAPHC_CACHE_DIR"] = str(tmp_path / "cache")
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, SCRIPT] + args, env=env, capture_output=True,
                          text=True, timeout=300)


def test_simulated_small_run_checks_and_times_w1_to_w4_into_a_markdown_table(tmp_path):
    out = tmp_path / "gpu.md"
    done = run(["--simulate", "--small", "--steps", "2", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "- GPU: Numba CUDA simulator (no GPU)" in text
    assert "median of 2 synchronized steps after 1 warm-up" in text
    rows = [line for line in text.splitlines() if line.startswith("| W")]
    assert [row.split(" | ")[0] for row in rows] == ["| W1 mlp", "| W2 cnn", "| W4 fusion",
                                                      "| W3 rnn"]
    for row in rows:
        cells = row.split(" | ")
        assert re.fullmatch(r"ok \(\d\.\de-\d\d, [\w ]+\)", cells[1]), row
        assert float(cells[3]) > 0 and cells[4] == "no", row     # the simulator: no graphs
        assert all(float(cell) > 0 for cell in cells[5:8]) and cells[8:] == ["n/a", "n/a |"]


def test_a_failed_comparison_is_reported_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(SCRIPT))
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    import gpu_check
    def result(w):
        return types.SimpleNamespace(outputs=[[1.0]], variables={"w": w})
    assert gpu_check.compare(result([1.0, 2.5]), result([1.0, 2.0])) == \
        (0.25, "w", False)                     # |2.5 - 2| / max |[1, 2]|
    assert gpu_check.compare(result([1.0]), result([1.0, 2.0]))[0] == float("inf")
    monkeypatch.setattr(gpu_check, "RTOL", -1.0)       # nothing can pass
    out = tmp_path / "gpu.md"
    code = gpu_check.main(["--simulate", "--small", "--workloads", "fusion", "--steps", "1",
                           "--out", str(out)])
    assert code == 1 and "| W4 fusion | **FAILED** (" in out.read_text()


@pytest.mark.skipif(GPU, reason="this machine has a GPU: gpu_check runs instead of refusing")
def test_without_a_gpu_it_exits_2_and_says_how_to_simulate(tmp_path):
    done = run(["--small"], tmp_path, simulator=False)
    assert done.returncode == 2
    assert "no CUDA GPU found" in done.stderr and "--simulate --small" in done.stderr


def test_a_crashing_workload_is_an_error_row_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(SCRIPT))
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    import gpu_check
    real_build = gpu_check.build

    def build(kind, small):
        if kind == "mlp":
            raise ValueError("no | kernel")
        return real_build(kind, small)
    monkeypatch.setattr(gpu_check, "build", build)
    out = tmp_path / "gpu.md"
    code = gpu_check.main(["--simulate", "--small", "--workloads", "mlp,fusion", "--steps", "1",
                           "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| W")]
    assert code == 1 and rows[0] == "| W1 mlp | **ERROR** ValueError: no / kernel | | | | | | | | |"
    assert rows[1].startswith("| W4 fusion | ok (")
