"""The Numba CPU backend."""
