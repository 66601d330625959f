"""The numbers behind a verdict (pure: no I/O).

* compiled_bootstrap.py  stats.py's paired bootstrap over independent
                         examples, compiled (numba) and run on every core;
                         bit-identical to stats.py's numpy path.
* pcg_stream.py          numpy's PCG64 stream, bounded as Generator.integers
                         bounds it, for the compiled bootstrap's draws.
* pairwise.py            numpy's pairwise summation order, compiled.
* rank_scans.py          one model's passes: counts in score order, the
                         AUROC pair count and average-precision terms.
* compiled.py            numba when it imports, and the kernels' compilation.
* design.py              how a benchmark's examples may be resampled: groups
                         (clusters of dependent examples), strata, label classes.
* resampling.py          the paired bootstrap under such a design, one
                         BootstrapResult per metric, the same type stats.py returns.
* intervals.py           the intervals those resamples feed: percentile (with
                         its normal-tail fallback), the few-groups t interval, BCa.
* seeds.py               bootstrap seeds from the split and the compared predictions.
* delong.py              DeLong's paired AUROC test (Sun & Xu 2014).
* power.py               minimum detectable effects and standard errors.

stats.py calls the design-aware modules only through its benchmark adapter
(a benchmark that declares a design, or has few examples of one class).
"""
