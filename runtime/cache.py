"""The compile cache: generated modules written under the cache folder, named
by the hash of their source, and imported with Numba's `cache=True`, so a
second process with the same graph starts warm.

Folder: $GRAPHC_CACHE_DIR, else $XDG_CACHE_HOME/graphc, else ~/.cache/graphc.
An entry is trusted only if its file holds exactly the source it is named
after: a truncated, corrupt or stale file is rewritten (atomically, via a
temporary file and a rename, so two processes compiling the same graph at
once never see half a file). Numba keeps its machine code beside the module
in __pycache__ and checks it against the module file itself; loop kernels
lowered to LLVM IR keep theirs in the folder's kernels/, named by their own
text, beside the step program's thunks (runtime/cpu/ir_cache.py).

The runtime's own kernels are cached by Numba per version of the runtime's
sources (runtime/cpu/kernel_cache.py). A generated module calls them, and
Numba's cache of it holds copies of them, so its first line names that
version (`runtime_fingerprint`): a changed runtime writes new modules.
"""
import functools
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path


RUNTIME = Path(__file__).resolve().parent
KERNELS = "kernels"     # the cache folder's subfolder of lowered kernels (cpu/ir_cache.py)


@functools.cache
def runtime_fingerprint(root=RUNTIME):
    """A hash of the runtime's source files (every .py under `root`)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir():
    explicit = os.environ.get("GRAPHC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def load_module(source):
    """Import the module for `source` from the cache; returns (module, hit)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:32]
    name = f"graphc_step_{digest}"
    folder = cache_dir()
    path = folder / f"{name}.py"
    loaded = sys.modules.get(name)
    # reuse the imported module only while its file is still this folder's entry
    # (not after clear() or a change of $GRAPHC_CACHE_DIR)
    if loaded is not None and loaded.__file__ == str(path) and path.is_file():
        return loaded, True
    folder.mkdir(parents=True, exist_ok=True)
    hit = _holds(path, source)
    if not hit:
        _write_atomically(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module, hit


def _holds(path, source):
    try:
        return path.read_text() == source
    except (OSError, UnicodeDecodeError):
        return False


def _write_atomically(path, text):
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def purge_compiled(module):
    """Delete Numba's compiled code for `module`'s kernels (they are recompiled on the
    next call). The lowered loop kernels' and the thunks' entries, in their own
    folder, are not Numba's: each is checked when loaded (runtime/cpu/ir_cache.py)."""
    stem = Path(module.__file__).stem
    for file in (Path(module.__file__).parent / "__pycache__").glob(f"{stem}.*.nb[ic]"):
        file.unlink(missing_ok=True)


def size_bytes():
    """The bytes of the cache's own entries (`entries`)."""
    return sum(_bytes_under(entry) for entry in entries())


def entries(folder=None):
    """The cache's own files under `folder`: generated modules (and half-written
    ones), Numba's code for them, the lowered kernels' folder. Nothing else: the
    folder may be one the user named, holding files of theirs."""
    folder = Path(folder or cache_dir())
    found = [*folder.glob("graphc_step_*.py"), *folder.glob(".tmp-*.py"),
             *(folder / "__pycache__").glob("graphc_step_*")]
    return found + ([folder / KERNELS] if (folder / KERNELS).is_dir() else [])


def clear():
    """Remove every cached module and its compiled code, and the cache's folders if
    that leaves them empty; returns the bytes removed. Other files stay."""
    folder, removed = cache_dir(), 0
    for entry in entries(folder):
        removed += _bytes_under(entry)
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    for emptied in (folder / "__pycache__", folder):
        if emptied.is_dir() and not any(emptied.iterdir()):
            emptied.rmdir()
    return removed


def _bytes_under(path):
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.is_file() else 0
