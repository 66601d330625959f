"""The numbers behind a verdict (pure: no I/O).

* compiled_bootstrap.py  stats.py's paired bootstrap over independent
                         examples, compiled (numba) and run on every core;
                         bit-identical to stats.py's numpy path.
"""
