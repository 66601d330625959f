"""numba, when it imports, and how the kernels are compiled (pure: no I/O).

The compiled kernels (compiled_bootstrap.py, pcg_stream.py, pairwise.py)
are optional: without numba the numpy path in stats.py gives the same
results, slower.
"""
from __future__ import annotations

try:
    import numba
except ImportError:  # the numpy path in stats.py gives the same results, slower
    numba = None

#: True when the compiled kernels can run (numba imports).
AVAILABLE = numba is not None


def compiled(signature, *, inline: str = "never"):
    """Compile for exactly `signature`, when this module is imported.

    Eager: a call never compiles, so two threads can never compile at once
    (numba can crash then), and an argument of another type is a TypeError
    instead of a silent new specialisation.  cache=True keeps the machine
    code in __pycache__, so a new process loads it instead of compiling it.
    inline="always" inlines a small function into its callers (numba's own
    inlining; a call costs reference counting of every array argument).
    """
    def decorate(function):
        return numba.njit(signature, nogil=True, cache=True, inline=inline)(function) if numba is not None else function
    return decorate
