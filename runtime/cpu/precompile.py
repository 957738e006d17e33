"""Compile a cold step's loop kernels in a second process, on the other core.

The first call of a cold step compiles its loop kernels one after another as
the step is typed (W1: nine kernels, about 4 s of its 5 s). When a newly
written module has at least MIN_KERNELS of them, the backend starts

    python -m graphc.runtime.cpu.precompile    (the module and kernels on stdin)

which imports the same generated module and compiles its kernels for the
exact argument types the step passes, last kernel first. The step reaches
them first to last, so the two meet in the middle: each kernel the helper
has finished is loaded from Numba's cache, which two processes may write at
once. The helper writes nothing else, so it changes nothing but time;
whatever it has not finished when the step is compiled, the step compiled
itself, and the helper is stopped. GRAPHC_COMPILE_HELPER=0 turns it off.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

MIN_KERNELS = 6


def kernel_signatures(loops):
    """[(function name, [dtype names of its array arguments])] for each distinct loop
    function: flat C-contiguous inputs, outputs, gather tables, then `err`."""
    found = {}
    for loop in loops:
        if loop.name not in found:
            nodes = list(loop.inputs) + list(loop.outputs)
            found[loop.name] = [np.dtype(n.dtype).name for n in nodes] + \
                ["int64"] * (len(loop.tables) + 1)
    return list(found.items())


def start(module_path, loops):
    """The helper process compiling `loops` (LoopSources) of the module at
    `module_path`, or None when there are too few kernels or it is turned off."""
    kernels = kernel_signatures(loops)
    if len(kernels) < MIN_KERNELS or os.environ.get("GRAPHC_COMPILE_HELPER", "1") == "0":
        return None
    request = json.dumps({"module": str(module_path), "kernels": kernels[::-1]})
    try:
        helper = subprocess.Popen([sys.executable, "-m", "graphc.runtime.cpu.precompile"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        helper.stdin.write(request.encode())
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


def compile_kernels(module_path, kernels):
    """Import the generated module under its own name and compile each kernel."""
    from numba import from_dtype, types
    path = os.fspath(module_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for function, dtypes in kernels:
        argtypes = tuple(types.Array(from_dtype(np.dtype(d)), 1, "C") for d in dtypes)
        getattr(module, function).compile(argtypes)


def main():
    request = json.loads(sys.stdin.read())
    compile_kernels(request["module"], request["kernels"])


if __name__ == "__main__":
    main()
