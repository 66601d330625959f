"""numpy's pairwise summation, compiled: the order every float sum of the bootstrap takes (pure: no I/O).

numpy sums a contiguous run with ``pairwise_sum``: runs of at most 128
values are summed by 8 accumulators (fewer than 8 values: one), longer runs
are split in two at a multiple of 8.  Walking the same tree over the same
values, with no fast-math flags, rounds every sum the same way, so the
compiled bootstrap equals stats.py's numpy path bit for bit.
"""
from __future__ import annotations

from .compiled import compiled as _compiled


@_compiled(["float64(float64[::1], uint8[::1], int64, int64)", "float64(float64[::1], int32[::1], int64, int64)"])
def _pairwise_weighted(values, counts, start, count):
    """numpy's pairwise sum of float64(counts[j]) * values[j] over j in [start, start + count).

    The same tree as numpy's ``pairwise_sum`` (runs of at most 128 summed by
    8 accumulators, longer runs split in two at a multiple of 8), so it equals
    ``np.multiply(counts, values, dtype=float64).sum()`` bit for bit.
    """
    if count < 8:
        total = 0.0
        for j in range(start, start + count):
            total += float(counts[j]) * values[j]
        return total
    if count <= 128:
        r0 = float(counts[start]) * values[start]
        r1 = float(counts[start + 1]) * values[start + 1]
        r2 = float(counts[start + 2]) * values[start + 2]
        r3 = float(counts[start + 3]) * values[start + 3]
        r4 = float(counts[start + 4]) * values[start + 4]
        r5 = float(counts[start + 5]) * values[start + 5]
        r6 = float(counts[start + 6]) * values[start + 6]
        r7 = float(counts[start + 7]) * values[start + 7]
        unrolled_stop = start + count - count % 8
        j = start + 8
        while j < unrolled_stop:
            r0 += float(counts[j]) * values[j]
            r1 += float(counts[j + 1]) * values[j + 1]
            r2 += float(counts[j + 2]) * values[j + 2]
            r3 += float(counts[j + 3]) * values[j + 3]
            r4 += float(counts[j + 4]) * values[j + 4]
            r5 += float(counts[j + 5]) * values[j + 5]
            r6 += float(counts[j + 6]) * values[j + 6]
            r7 += float(counts[j + 7]) * values[j + 7]
            j += 8
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while j < start + count:
            total += float(counts[j]) * values[j]
            j += 1
        return total
    half = count // 2
    half -= half % 8
    return _pairwise_weighted(values, counts, start, half) + _pairwise_weighted(values, counts, start + half,
                                                                                count - half)


@_compiled("float64(float64[::1], int64, int64)")
def _pairwise_sum(values, start, count):
    """numpy's pairwise sum of the contiguous values[start:start+count]."""
    if count < 8:
        total = 0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    if count <= 128:
        r0 = values[start]
        r1 = values[start + 1]
        r2 = values[start + 2]
        r3 = values[start + 3]
        r4 = values[start + 4]
        r5 = values[start + 5]
        r6 = values[start + 6]
        r7 = values[start + 7]
        unrolled_stop = start + count - count % 8
        i = start + 8
        while i < unrolled_stop:
            r0 += values[i]
            r1 += values[i + 1]
            r2 += values[i + 2]
            r3 += values[i + 3]
            r4 += values[i + 4]
            r5 += values[i + 5]
            r6 += values[i + 6]
            r7 += values[i + 7]
            i += 8
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < start + count:
            total += values[i]
            i += 1
        return total
    half = count // 2
    half -= half % 8
    return _pairwise_sum(values, start, half) + _pairwise_sum(values, start + half, count - half)
