"""The Numba CPU backend."""
from graphc.runtime.cpu import kernel_cache

kernel_cache.install()      # before any of the runtime's cached kernels is defined
kernel_cache.prune()
