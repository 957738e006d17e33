"""Where Numba caches the runtime's own kernels: one folder per version of the
runtime's sources.

Numba checks a cached function only against its own file, yet a cached caller
holds copies of its callees (library.matmul holds blas._sgemm). So the
runtime's kernels are cached under a folder named by the hash of every runtime
source (`runtime_fingerprint`), beside each file:

    runtime/cpu/__pycache__/graphc-<fingerprint>/library.matmul-93.py311.1.nbc

A change to any runtime file starts an empty folder. A process still running
older sources (started before an edit or an upgrade) reads and writes only its
own folder, so no process ever loads code compiled from other sources. (A
stamp file and a purge on import did not ensure that: such a process wrote
stale callers back after the purge.)

`prune` deletes the folders of all but the KEEP_OTHERS most recently used
other versions, and the files of the layout before this one.
"""
import shutil
from pathlib import Path

from numba.core.caching import CacheImpl, InTreeCacheLocator

from graphc.runtime.cache import RUNTIME, runtime_fingerprint

PREFIX = "graphc-"
KEEP_OTHERS = 4


class RuntimeCacheLocator(InTreeCacheLocator):
    """Numba's cache locator for functions defined under runtime/: the in-tree
    __pycache__, in this runtime version's folder."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if RUNTIME not in Path(py_file).resolve().parents:
            return None
        return super().from_function(py_func, py_file)     # None if not writable

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str(Path(self._cache_path) / (PREFIX + runtime_fingerprint()))


def install():
    """Cache the runtime's kernels by version (before any of them is defined)."""
    if RuntimeCacheLocator not in CacheImpl._locator_classes:
        CacheImpl._locator_classes.insert(0, RuntimeCacheLocator)


def prune(root=RUNTIME, keep_others=KEEP_OTHERS):
    """Delete cached kernels of old runtime versions; the number of folders deleted."""
    current = PREFIX + runtime_fingerprint(root)
    deleted = 0
    try:
        for pycache in root.rglob("__pycache__"):
            for file in [*pycache.glob("*.nbi"), *pycache.glob("*.nbc")]:
                file.unlink(missing_ok=True)        # the layout before version folders
            others = [f for f in pycache.glob(PREFIX + "*") if f.is_dir() and f.name != current]
            others.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
            for folder in others[keep_others:]:
                shutil.rmtree(folder, ignore_errors=True)
                deleted += 1
    except OSError:         # a read-only install: its sources cannot have changed
        pass
    return deleted
