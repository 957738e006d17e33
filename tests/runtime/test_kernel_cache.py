"""runtime/cpu/kernel_cache.py: the runtime's own kernels are cached per version of
the runtime's sources, so code compiled from other sources (a callee copied into
a cached caller) is never loaded, and old versions' folders are pruned."""
import os
import time

import numpy as np

from graphc.runtime import cache
from graphc.runtime.cpu import kernel_cache, library


def test_runtime_kernels_cache_in_the_folder_of_this_runtime_version():
    out = np.empty((2, 2), np.float32)
    library.matmul_any_layout(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), out)
    folder = library.matmul_any_layout._cache._cache_path
    assert os.path.basename(folder) == "graphc-" + cache.runtime_fingerprint()
    assert os.path.dirname(folder).endswith(os.path.join("runtime", "cpu", "__pycache__"))
    assert any(name.startswith("library.matmul_any_layout") for name in os.listdir(folder))


def test_functions_outside_the_runtime_keep_numbas_own_place(tmp_path):
    elsewhere = tmp_path / "user_code.py"
    elsewhere.write_text("def f():\n    return 1\n")
    namespace = {}
    exec(compile(elsewhere.read_text(), str(elsewhere), "exec"), namespace)
    assert kernel_cache.RuntimeCacheLocator.from_function(namespace["f"], str(elsewhere)) is None


def _runtime_tree(root, source):
    (root / "cpu" / "__pycache__").mkdir(parents=True)
    (root / "blas.py").write_text(source)
    return kernel_cache.PREFIX + cache.runtime_fingerprint(root)


def test_a_change_to_any_runtime_file_names_another_folder(tmp_path):
    first = _runtime_tree(tmp_path / "a", "A = 1\n")
    assert first != _runtime_tree(tmp_path / "b", "A = 2\n")
    assert first == _runtime_tree(tmp_path / "c", "A = 1\n")


def test_prune_keeps_this_version_and_the_most_recent_others(tmp_path):
    root = tmp_path / "runtime"
    current = _runtime_tree(root, "A = 1\n")
    pycache = root / "cpu" / "__pycache__"
    loose = pycache / "conv.kernel-1.py311.nbi"             # the layout before folders
    loose.write_bytes(b"index")
    (pycache / current).mkdir()
    others = [pycache / f"{kernel_cache.PREFIX}{i:016x}" for i in range(6)]
    for age, folder in enumerate(others):
        folder.mkdir()
        (folder / "k.nbc").write_bytes(b"code")
        os.utime(folder, (time.time() - 100 * age,) * 2)     # others[0] the most recent
    assert kernel_cache.prune(root, keep_others=4) == 2
    assert (pycache / current).is_dir() and not loose.exists()
    assert [f.exists() for f in others] == [True] * 4 + [False] * 2
