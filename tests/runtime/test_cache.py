"""The compile cache (runtime/cache.py): generated modules written under
$GRAPHC_CACHE_DIR named by the sha256 of their source, reused in the same
process and by later processes (Numba's machine code beside them in
__pycache__, the lowered loop kernels' in kernels/), and never trusted when
corrupt.

Every test uses its own empty cache folder. The cross-process tests run a
small child script (CHILD) that compiles sum(x * k + 1) for x = arange(n),
calls it once and prints JSON: the result, graphc's stats and the cache
hits and misses (Numba's counters, which loop_kernel.py keeps too) summed over the module's kernels. The expected result is
exact: every partial sum is a small integer, so float32 holds it exactly.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cache

N = 8
NAME = re.compile(r"graphc_step_([0-9a-f]{32})\.py")

CHILD = r"""
import json, os, sys, time
import numpy as np
import graphc as gc
from numba.core.dispatcher import Dispatcher
from graphc.runtime.cpu import thunks

k, n = float(sys.argv[1]), int(sys.argv[2])
x = gc.placeholder((n,), name="x")
step = gc.compile(gc.sum(x * k + 1), inputs=[x], device="cpu")
if len(sys.argv) > 3:             # start together with the other children
    sync = sys.argv[3]
    open(os.path.join(sync, f"ready-{os.getpid()}"), "w").close()
    while not os.path.exists(os.path.join(sync, "go")):
        time.sleep(0.001)
result = step(np.arange(n, dtype=np.float32))
module = sys.modules[os.path.splitext(os.path.basename(step.stats["module"]))[0]]
kernels = [f for f in vars(module).values() if isinstance(f, Dispatcher)]
print(json.dumps({
    "result": float(result),
    "cache_hit": step.stats["cache_hit"],
    "module": step.stats["module"],
    # the njit functions loaded: each loop kernel (the step is a program that calls
    # them through a thunk per signature: runtime/cpu/step_program.py)
    "generated_kernels": step.stats["distinct_loops"],
    "thunks": thunks.counts,
    "module_functions": sum(f.py_func.__module__ == module.__name__ for f in kernels),
    "numba_hits": sum(sum(f.stats.cache_hits.values()) for f in kernels),
    "numba_misses": sum(sum(f.stats.cache_misses.values()) for f in kernels),
}))
"""


def expected(k, n=N):
    return float(np.sum(np.arange(n) * k + 1))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty cache folder, used by this process and by the children it starts."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)   # Numba's code beside the module
    return path


NUMBA_KERNELS = "from graphc.runtime.cpu import loop_kernel\nloop_kernel.LOWER = False\n"


def child_command(k, *extra, n=N, prefix=""):
    return [sys.executable, "-c", prefix + CHILD, repr(k), str(n), *map(str, extra)]


def run_child(k, n=N, prefix=""):
    """The child's JSON; with prefix=NUMBA_KERNELS its loop kernels compile through
    Numba, as does a kernel that kernel_ir refuses, cached in Numba's files."""
    done = subprocess.run(child_command(k, n=n, prefix=prefix), capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def modules(folder):
    return sorted(folder.glob("graphc_step_*.py"))


def compiled_files(module_path):
    """Numba's index (.nbi) and machine code (.nbc) of the module's kernels Numba
    compiles (none here: every kernel is lowered), and the entries (.irk) of the lowered
    loop kernels and of the step's thunks (runtime/cpu/ir_cache.py: every graph's in one
    folder)."""
    module_path = Path(module_path)
    folder = module_path.parent / "__pycache__"
    return sorted([*folder.glob(f"{module_path.stem}.*.nb[ic]"),
                   *(module_path.parent / "kernels").glob("*.irk")])


def tiny(k, n=N):
    x = gc.placeholder((n,), name="x")
    return gc.compile(gc.sum(x * k + 1), inputs=[x], device="cpu")


def feed(n=N):
    return np.arange(n, dtype=np.float32)


def assert_valid_entry(path):
    """The file is named after the sha256 of exactly the text it holds."""
    match = NAME.fullmatch(path.name)
    assert match, path.name
    assert hashlib.sha256(path.read_text().encode()).hexdigest()[:32] == match.group(1)


# -- one process -------------------------------------------------------------------------

def test_module_is_written_under_the_cache_dir_named_by_the_sha256_of_its_source(folder):
    step = tiny(3.0)
    assert float(step(feed())) == expected(3.0)
    path = Path(step.stats["module"])
    assert path.parent == folder
    assert modules(folder) == [path]
    assert_valid_entry(path)
    text = path.read_text()
    assert "@loop_kernel(" in text and "cache=True" in text
    assert step.stats["cache_hit"] is False


def test_a_fresh_executable_of_the_same_graph_reuses_the_module(folder):
    first = tiny(5.0)
    first(feed())
    with gc.Graph("again"):                   # the same graph built again
        second = tiny(5.0)
        assert float(second(feed())) == expected(5.0)
    assert first.stats["cache_hit"] is False
    assert second.stats["cache_hit"] is True
    assert second.stats["module"] == first.stats["module"]
    assert len(modules(folder)) == 1


def test_changing_the_cache_dir_writes_the_module_to_the_new_folder(tmp_path, folder,
                                                                    monkeypatch):
    first = tiny(6.0)
    first(feed())
    other = tmp_path / "other"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(other))
    with gc.Graph("again"):
        second = tiny(6.0)
        assert float(second(feed())) == expected(6.0)
    assert Path(second.stats["module"]).parent == other
    assert second.stats["cache_hit"] is False
    assert len(modules(other)) == 1 and len(modules(folder)) == 1


def test_clear_empties_the_folder_and_size_bytes_counts_every_file(folder):
    assert cache.size_bytes() == 0              # not created yet
    step = tiny(7.0)
    step(feed())
    files = [f for f in folder.rglob("*") if f.is_file()]
    assert compiled_files(step.stats["module"])  # Numba wrote its code beside the module
    assert cache.size_bytes() == sum(f.stat().st_size for f in files) > 0
    cache.clear()
    assert cache.size_bytes() == 0
    assert not folder.exists() or not any(folder.rglob("*"))


def test_compiling_after_clear_writes_the_module_again(folder):
    tiny(9.0)(feed())
    cache.clear()
    with gc.Graph("again"):
        step = tiny(9.0)
        assert float(step(feed())) == expected(9.0)
    assert step.stats["cache_hit"] is False
    path = Path(step.stats["module"])
    assert modules(folder) == [path]
    assert_valid_entry(path)
    assert cache.size_bytes() > 0


# -- later processes -----------------------------------------------------------------------

def test_a_second_process_starts_warm(folder):
    first = run_child(2.0)
    compiled = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in compiled_files(first["module"])}
    second = run_child(2.0)
    assert first["cache_hit"] is False and first["numba_misses"] == first["module_functions"] >= 1
    assert second["cache_hit"] is True
    assert second["module"] == first["module"]
    assert second["result"] == first["result"] == expected(2.0)
    # the lowered kernels' entries and the thunks' (runtime/cpu/ir_cache.py) exist and were loaded, not rebuilt
    assert {f.suffix for f in compiled} == {".irk"}
    assert any(f.name.startswith("graphc_thunk_") for f in compiled)
    assert second["numba_hits"] == second["generated_kernels"] and second["numba_misses"] == 0
    assert second["thunks"]["loaded"] >= 1 and second["thunks"]["compiled"] == 0
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in compiled_files(first["module"])} \
        == compiled


COLUMN_SUM = r"""
import numpy as np
import graphc as gc
x = gc.placeholder((512, 64), name="x")
step = gc.compile(gc.sum(x * 2.0, axis=0), inputs=[x], device="cpu")
print(float(step(np.ones((512, 64), np.float32)).sum()))
"""


def test_a_warm_process_loads_a_kernel_that_allocates(folder):
    """A bias gradient's column sum keeps its accumulators in an array that the
    lowered kernel allocates through Numba's runtime (kernel_ir.py's np.full). A
    process that only loaded cached code had not registered the runtime's symbols,
    and LLVM aborted it ("Symbol not found: NRT_MemInfo_alloc_aligned")."""
    runs = [subprocess.run([sys.executable, "-c", COLUMN_SUM], capture_output=True,
                           text=True, env=dict(os.environ), timeout=120) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr[-2000:]
        assert float(done.stdout.split()[-1]) == 2.0 * 512 * 64
    assert "np.full(" in modules(folder)[0].read_text()


WARM_CHILD = r"""
import sys
from numba.core import base
refreshes = []
original = base.BaseContext.refresh
def counted(self):
    refreshes.append(1)
    return original(self)
base.BaseContext.refresh = counted
import numpy as np
import graphc as gc
x = gc.placeholder((64, 32), name="x")
w = gc.variable(np.ones((32, 16), np.float32), name="w")
images = gc.placeholder((2, 32, 10, 10), name="images")     # a Winograd conv, a pooling
kernel = gc.variable(np.full((32, 32, 3, 3), 0.5, np.float32), name="kernel")
pooled = gc.nn.functional.max_pool2d(gc.nn.functional.conv2d(images, kernel), 2)
step = gc.compile([gc.sum(gc.relu(x @ w)), gc.sum(pooled)], inputs=[x, images],
                  device="cpu")
first, second = step(np.ones((64, 32), np.float32), np.ones((2, 32, 10, 10), np.float32))
loaded = len(refreshes)
array_math = "numba.np.arraymath" in sys.modules
y = gc.placeholder((8,), name="y")      # then a new kernel: its literal is this run's
other = gc.compile([gc.sum(y * float(sys.argv[1]))], inputs=[y], device="cpu")
print(array_math, float(first), float(second), loaded, float(other(np.ones(8, np.float32))[0]))
"""


def test_a_warm_step_loads_numbas_cached_code_without_its_registry_refresh(folder):
    """Numba refreshes its target context (imports every implementation registry: about
    0.25 s) before it loads a cached function. A warm step's first call loads the
    library kernels and run_program without that (runtime/cpu/numba_cache.py), and a
    kernel compiled after them in the same process still compiles and runs. Nor does
    it import numba.np.arraymath, whose import loads SciPy's linalg (0.17 s): the
    module of a cached kernel's helper (np.flatnonzero) is imported when it loads."""
    outputs = []
    for k in (2.0, 3.0):
        done = subprocess.run([sys.executable, "-c", WARM_CHILD, repr(k)], capture_output=True,
                              text=True, env=dict(os.environ), timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.split()[-5:])
    (_, first, pooled, _, other_2), (array_math, again, pooled_again, refreshes, other_3) = \
        [[word == "True" if word in ("True", "False") else float(word) for word in words]
         for words in outputs]
    assert first == again == 64 * 16 * 32 and other_2 == 16 and other_3 == 24
    assert pooled == pooled_again == 2 * 32 * 4 * 4 * (32 * 9 * 0.5)
    assert refreshes == 0 and array_math is False


def _tampered(source):
    """A module with the same kernel names whose kernels write zeros, padded to the
    length of `source` (so that only the contents tell them apart)."""
    names = re.findall(r"^def (\w+)\(", source, re.M)
    assert names
    text = "import numpy as np\n" + "".join(
        f"def {name}(*args):\n    args[-2][:] = 0\n" for name in names)
    assert len(text) < len(source)
    return text + "#" * (len(source) - len(text) - 1) + "\n"


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
def test_a_corrupt_module_file_is_rewritten_not_trusted(folder, damage):
    k = {"truncated": 11.0, "replaced": 12.0}[damage]
    first = run_child(k)
    path = Path(first["module"])
    source = path.read_text()
    stat = path.stat()
    if damage == "truncated":
        path.write_text(source[:len(source) // 2])
    else:
        path.write_text(_tampered(source))
        assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the stamp Numba's index holds
    second = run_child(k)
    assert second["result"] == expected(k)
    assert second["cache_hit"] is False
    assert second["module"] == first["module"]
    assert path.read_text() == source
    assert modules(folder) == [path]


@pytest.mark.parametrize("damage", ["emptied", "halved", "a byte flipped"])
def test_corrupt_compiled_code_is_rebuilt_not_trusted(folder, damage):
    k = {"emptied": 21.0, "halved": 22.0, "a byte flipped": 23.0}[damage]
    first = run_child(k)
    files = compiled_files(first["module"])
    assert {f.suffix for f in files} == {".irk"}
    for file in files:
        data = file.read_bytes()
        if damage == "emptied":
            file.write_bytes(b"")
        elif damage == "halved":
            file.write_bytes(data[:len(data) // 2])
        else:
            middle = len(data) // 2
            file.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    second = run_child(k)
    assert second["result"] == expected(k)
    assert second["cache_hit"] is True         # the module file itself was intact
    # rebuilt: the next process loads every kernel from the cache again
    third = run_child(k)
    assert third["result"] == expected(k)
    assert third["numba_hits"] == third["generated_kernels"] and third["numba_misses"] == 0
    assert third["thunks"]["compiled"] == 0


@pytest.mark.parametrize("damage", ["halved", "garbage index"])
def test_corrupt_numba_code_of_a_kernel_is_rebuilt_not_trusted(folder, damage):
    """A loop kernel Numba compiles (a `while`, a parallel=True kernel) is cached in
    Numba's .nbi/.nbc beside the module; damaged, the step purges and rebuilds it."""
    k = {"halved": 24.0, "garbage index": 25.0}[damage]
    first = run_child(k, prefix=NUMBA_KERNELS)
    files = [f for f in compiled_files(first["module"]) if f.suffix in (".nbi", ".nbc")]
    assert {f.suffix for f in files} == {".nbi", ".nbc"}
    for file in files:
        if damage == "halved":
            file.write_bytes(file.read_bytes()[:file.stat().st_size // 2])
        elif file.suffix == ".nbi":
            file.write_bytes(b"not a pickle \x00\xff" * 8)
    second = run_child(k, prefix=NUMBA_KERNELS)
    assert second["result"] == expected(k) and second["cache_hit"] is True
    third = run_child(k, prefix=NUMBA_KERNELS)
    assert third["result"] == expected(k)
    assert third["numba_hits"] == third["generated_kernels"] and third["numba_misses"] == 0


def test_two_processes_compiling_at_once_both_succeed_and_leave_one_valid_module(tmp_path,
                                                                                  folder):
    k = 31.0
    sync = tmp_path / "sync"
    sync.mkdir()
    children = [subprocess.Popen(child_command(k, sync), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ))
                for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            break                              # one died before compiling: reported below
        time.sleep(0.005)
    (sync / "go").touch()
    outputs = [c.communicate(timeout=120) for c in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert [r["result"] for r in results] == [expected(k)] * 2
    assert results[0]["module"] == results[1]["module"]
    [path] = modules(folder)
    assert str(path) == results[0]["module"]
    assert_valid_entry(path)
    assert [f.name for f in folder.rglob("*") if ".tmp" in f.name] == []
    later = run_child(k)
    assert later["cache_hit"] is True and later["result"] == expected(k)


# -- the runtime's own compiled code -------------------------------------------------

def test_generated_modules_name_the_runtime_they_were_compiled_against(folder):
    """A cached step holds copies of the runtime kernels it calls, so a runtime
    change must change the module's name: its first line names the runtime's hash."""
    x = gc.placeholder((N,), name="x")
    step = gc.compile(gc.sum(x + 1), inputs=[x], device="cpu")
    step(np.zeros(N, np.float32))
    first_line = Path(step.stats["module"]).read_text().splitlines()[0]
    assert cache.runtime_fingerprint() in first_line


def _sgd_step(lr, device):
    """A small training step whose learning rate is a literal of its update kernel."""
    x = gc.placeholder((16, 8), name="x")
    w = gc.variable(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4), name="w")
    loss = gc.sum(gc.tanh(gc.matmul(x, w)) ** 2)
    (g,) = gc.grad(loss, [w])
    return gc.compile([loss], inputs=[x], updates={w: w - lr * g}, device=device), w


def test_a_graph_that_differs_in_its_learning_rate_loads_the_kernels_it_shares(folder):
    """Lowered loop kernels are cached by their own text, not their module's: the
    second graph (a new module) compiles only the kernels the literal changed."""
    from graphc.runtime.cpu.loop_kernel import LoopKernel
    feed = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    counts = []
    for lr in (0.1, 0.2):
        with gc.Graph(f"lr={lr}"):
            step, w = _sgd_step(lr, "cpu")
            step(feed)
        with gc.Graph(f"lr={lr}, reference"):
            reference, w_reference = _sgd_step(lr, "reference")
            reference(feed)
        np.testing.assert_allclose(w.value, w_reference.value, rtol=1e-5, atol=1e-6)
        (plan,) = step._plans.values()
        kernels = {f for f in plan.functions.values() if isinstance(f, LoopKernel)}
        counts.append((sum(sum(k.stats.cache_hits.values()) for k in kernels),
                       sum(sum(k.stats.cache_misses.values()) for k in kernels)))
    assert counts[0][0] == 0 and counts[0][1] >= 2
    hits, misses = counts[1]
    assert hits >= 1 and misses >= 1            # shared kernels loaded, the update compiled
    entries = [f for f in (folder / "kernels").glob("*.irk")
               if not f.name.startswith("graphc_thunk_")]     # (thunks: test_step_program)
    assert len(entries) == counts[0][1] + misses
