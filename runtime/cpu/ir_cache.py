"""Cache entries of code graphc compiles itself: lowered loop kernels
(runtime/cpu/loop_kernel.py) and the step program's thunks (thunks.py).

An entry lives in the cache folder's `kernels/` as `<digest>.irk`, the digest
of what the code depends on (`entry_digest`: the caller's key, the runtime's
fingerprint, the machine as Numba's `magic_tuple` names it, the numba and
llvmlite versions). It is a SHA-256 of its payload, then the payload (the
symbol, Numba's serialized library): a truncated or corrupt entry fails the
check and is compiled again, never loaded. Entries are written to a temporary
file and renamed, so two processes compiling one piece of code each write a
whole entry.

Loaded object code is linked against the process's symbols: Numba's runtime
(NRT) must have registered its own before an entry that allocates (np.full's
accumulators, kernel_ir.py) is loaded, or LLVM aborts the process. Numba
registers them only when it compiles something; `load_entry` does it first.
"""
import hashlib
import os
import pickle
import tempfile

import llvmlite
import numba
from numba.core.registry import cpu_target
from numba.core.runtime import rtsys

from graphc.runtime.cache import KERNELS, cache_dir, runtime_fingerprint


def entry_digest(codegen, key):
    """The digest naming the entry of code that depends on `key` (its repr)."""
    full = repr((key, runtime_fingerprint(), codegen.magic_tuple(), numba.__version__,
                 llvmlite.__version__))
    return hashlib.sha256(full.encode()).hexdigest()[:24]


def entry_path(digest):
    return cache_dir() / KERNELS / f"{digest}.irk"


def save_entry(path, symbol, library):
    """Write `library` (compiled, defining `symbol`) as the cache entry at `path`."""
    payload = pickle.dumps((symbol, library.serialize_using_object_code()))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        file.write(hashlib.sha256(payload).digest() + payload)
    os.replace(temporary, path)


def load_entry(codegen, path):
    """(symbol, library) of the entry at `path`; None (and the entry deleted) when it is
    absent, truncated, corrupt or unloadable."""
    if path is None or not path.is_file():
        return None
    rtsys.initialize(cpu_target.target_context)     # (once per process: 26 ms)
    try:
        data = path.read_bytes()
        checksum, payload = data[:32], data[32:]
        if hashlib.sha256(payload).digest() != checksum:
            raise ValueError("checksum")
        symbol, serialized = pickle.loads(payload)
        library = codegen.unserialize_library(serialized)
        if not library.get_pointer_to_function(symbol):
            raise ValueError("symbol")
    except Exception:       # noqa: BLE001 (any bad entry: compile again)
        path.unlink(missing_ok=True)
        return None
    return symbol, library
