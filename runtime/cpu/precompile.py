"""Compile a cold step's kernels in a second process, on the other core.

The first call of a cold step compiles every kernel it calls, loop kernels
and library kernels (conv, matmul, pooling, ...) alike, one after another as
its program is built (runtime/cpu/step_program.py): nearly all of a cold
first step's time (`graphc train` with every cache empty: about 35 of 44 s).
When a newly written module calls at least MIN_KERNELS that this process has
not compiled yet, the backend starts

    python -m graphc.runtime.cpu.precompile    (the module and callees on stdin)

which imports the same generated module and compiles its callees for the
exact argument types the step passes (its program's Calls name them:
step_program.kernels), last callee first. The step reaches them first
to last, so the two meet in the middle: each kernel the helper has finished
is loaded from the compile caches (the lowered loop kernels' own,
runtime/cpu/loop_kernel.py, and Numba's), which two processes may write at
once. The helper writes nothing else, so it changes nothing but time; whatever it has
not finished when the program is built, the step compiled itself, and the
helper is stopped. GRAPHC_COMPILE_HELPER=0 turns it off.
"""
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys

MIN_KERNELS = 6


def start(module_path, callees):
    """The helper process compiling `callees` ([(dispatcher, argument types)], in the
    step's order: runtime/cpu/step_program.py's `kernels`) of the module at `module_path` that
    this process has not compiled yet, or None when there are too few of them or it
    is turned off."""
    callees = [(d, argtypes) for d, argtypes in callees if argtypes not in d.overloads]
    if len(callees) < MIN_KERNELS or os.environ.get("GRAPHC_COMPILE_HELPER", "1") == "0":
        return None
    named = [(d.py_func.__module__, d.py_func.__name__, argtypes) for d, argtypes in callees]
    request = pickle.dumps({"module": os.fspath(module_path), "callees": named[::-1]})
    try:
        helper = subprocess.Popen([sys.executable, "-m", "graphc.runtime.cpu.precompile"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        helper.stdin.write(request)
        helper.stdin.close()
    except OSError:
        return None
    return helper


def stop(helper):
    """Stop a helper that is still compiling (its cache writes are atomic)."""
    if helper is not None and helper.poll() is None:
        helper.kill()
    if helper is not None:
        helper.wait()


def compile_callees(module_path, callees):
    """Import the generated module under its own name and compile each callee
    ((module name, function name, argument types)) in the order given. A callee
    that fails to compile is skipped: the step compiles it, and reports why."""
    path = os.fspath(module_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for module_name, function_name, argtypes in callees:
        owner = module if module_name == name else importlib.import_module(module_name)
        try:
            getattr(owner, function_name).compile(argtypes)
        except Exception:       # noqa: BLE001 (a wrong guess costs only this process)
            continue


def main():
    request = pickle.loads(sys.stdin.buffer.read())
    compile_callees(request["module"], request["callees"])


if __name__ == "__main__":
    main()
