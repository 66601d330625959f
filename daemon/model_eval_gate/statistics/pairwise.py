"""numpy's pairwise summation, compiled: the order every float sum of the bootstrap takes (pure: no I/O).

numpy sums a contiguous run with ``pairwise_sum``: runs of at most 128
values are summed by 8 accumulators (fewer than 8 values: one), longer runs
are split in two at a multiple of 8.  Walking the same tree over the same
values, with no fast-math flags, rounds every sum the same way, so the
compiled bootstrap equals stats.py's numpy path bit for bit.
"""
from __future__ import annotations

import numpy as np

from .compiled import compiled as _compiled, numba

if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic


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


# --------------------------------------------------------------------------
# The same sums from a plan: no recursion
# --------------------------------------------------------------------------
#
# The recursive walk above costs a numba call per node (its array arguments
# are reference-counted on every call): about 16,000 calls per million
# values, a quarter of a weighted sum's time.  The tree depends only on the
# number of values, so a run computes it once (pairwise_plan) and every
# resample walks it as a flat program: leaves are summed as in the
# recursive walk, and each COMBINE adds the last two partial sums, left
# plus right, exactly where the recursion adds its two halves.

#: numpy's pairwise sum adds runs of at most this many values in one leaf.
LEAF = 128

#: A plan step that adds the last two partial sums.
COMBINE = -1

#: Partial sums a plan can hold at once: the tree's depth, at most log2(2**63 / LEAF) + 1.
STACK_DEPTH = 64


def pairwise_plan(count: int) -> np.ndarray:
    """numpy's pairwise tree over `count` values as a postorder program of int64 steps.

    A leaf of `length` values from `start` is ``start << 8 | length``
    (length <= LEAF); COMBINE adds the two partial sums before it.  An empty
    sum is one leaf of length 0.
    """
    steps: list[int] = []

    def walk(start: int, length: int) -> None:
        if length <= LEAF:
            steps.append(start << 8 | length)
            return
        half = length // 2
        half -= half % 8
        walk(start, half)
        walk(start + half, length - half)
        steps.append(COMBINE)

    walk(0, int(count))
    return np.array(steps, dtype=np.int64)


def _intrinsic_lane_sums(weighted: bool):
    """The 8 accumulators of a leaf, as one vector of 8 doubles.

    numpy's leaf keeps 8 running sums, r[a] for the values at start + a,
    start + a + 8, ...: exactly what one 8-wide vector accumulator holds.
    numba does not vectorise the scalar form (8 loop-carried sums with no
    store to seed LLVM's vectoriser), so this builds the loop in LLVM IR:
    per step one vector load of 8 values (and of 8 counts, converted as
    float(counts[j]) converts them), one vector multiply and one vector add,
    each rounded like its scalar counterpart (no fast-math flags, so no
    fused multiply-add and no reassociation).  Returns the 8 sums, started
    from the first 8 products as the scalar leaf starts them.
    """
    @intrinsic
    def lane_sums(typingctx, values, counts, start, stop):
        """(r0, ..., r7) over [start, stop), stop - start a positive multiple of 8."""
        signature = types.UniTuple(types.float64, 8)(values, counts, start, stop)

        def codegen(context, builder, sig, args):
            lanes = 8
            index = ir.IntType(64)
            doubles = ir.VectorType(ir.DoubleType(), lanes)
            values_data = context.make_array(sig.args[0])(context, builder, args[0]).data
            counts_type = sig.args[1]
            counts_data = context.make_array(counts_type)(context, builder, args[1]).data if weighted else None
            start, stop = args[2], args[3]

            def terms(j):
                pointer = builder.bitcast(builder.gep(values_data, [j]), doubles.as_pointer())
                block = builder.load(pointer, align=8)
                if not weighted:
                    return block
                integers = ir.VectorType(context.get_value_type(counts_type.dtype), lanes)
                counts = builder.load(builder.bitcast(builder.gep(counts_data, [j]), integers.as_pointer()), align=1)
                convert = builder.sitofp if counts_type.dtype.signed else builder.uitofp
                return builder.fmul(convert(counts, doubles), block)

            sums = cgutils.alloca_once_value(builder, terms(start))
            blocks = builder.udiv(builder.sub(stop, start), ir.Constant(index, lanes))
            steps = builder.sub(blocks, ir.Constant(index, 1))
            with cgutils.for_range(builder, steps) as loop:
                j = builder.add(start, builder.mul(builder.add(loop.index, ir.Constant(index, 1)),
                                                   ir.Constant(index, lanes)))
                builder.store(builder.fadd(builder.load(sums), terms(j)), sums)
            total = builder.load(sums)
            parts = [builder.extract_element(total, ir.Constant(ir.IntType(32), a)) for a in range(lanes)]
            return context.make_tuple(builder, sig.return_type, parts)

        return signature, codegen
    return lane_sums


_weighted_lane_sums = _intrinsic_lane_sums(True) if numba is not None else None
_lane_sums = _intrinsic_lane_sums(False) if numba is not None else None


@_compiled(["float64(float64[::1], uint8[::1], int64, int64)", "float64(float64[::1], int32[::1], int64, int64)"],
           inline="always")
def _weighted_leaf(values, counts, start, count):
    """One leaf (count <= LEAF) of numpy's pairwise sum of float64(counts[j]) * values[j]."""
    if count < 8:
        total = 0.0
        for j in range(start, start + count):
            total += float(counts[j]) * values[j]
        return total
    unrolled_stop = start + count - count % 8
    r = _weighted_lane_sums(values, counts, start, unrolled_stop)
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for j in range(unrolled_stop, start + count):
        total += float(counts[j]) * values[j]
    return total


@_compiled("float64(float64[::1], int64, int64)", inline="always")
def _leaf(values, start, count):
    """One leaf (count <= LEAF) of numpy's pairwise sum of values."""
    if count < 8:
        total = 0.0
        for j in range(start, start + count):
            total += values[j]
        return total
    unrolled_stop = start + count - count % 8
    r = _lane_sums(values, values, start, unrolled_stop)
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for j in range(unrolled_stop, start + count):
        total += values[j]
    return total


@_compiled(["float64(float64[::1], uint8[::1], int64[::1], float64[::1])",
            "float64(float64[::1], int32[::1], int64[::1], float64[::1])"])
def planned_weighted(values, counts, plan, stack):
    """_pairwise_weighted(values, counts, 0, n) walked from pairwise_plan(n): the same bits."""
    top = 0
    for step in plan:
        if step == COMBINE:
            top -= 1
            stack[top - 1] = stack[top - 1] + stack[top]
        else:
            stack[top] = _weighted_leaf(values, counts, step >> 8, step & 255)
            top += 1
    return stack[0]


@_compiled("float64(float64[::1], int64[::1], float64[::1])")
def planned_sum(values, plan, stack):
    """_pairwise_sum(values, 0, n) walked from pairwise_plan(n): the same bits."""
    top = 0
    for step in plan:
        if step == COMBINE:
            top -= 1
            stack[top - 1] = stack[top - 1] + stack[top]
        else:
            stack[top] = _leaf(values, step >> 8, step & 255)
            top += 1
    return stack[0]


@_compiled("void(float64[::1], uint8[:, ::1], int64[::1], float64[:, ::1], float64[::1])")
def planned_weighted_rows(values, counts, plan, stack, out):
    """out[r] = planned_weighted(values, counts[r], plan, ...) for every row r, reading `values` once.

    At a million examples a column of values is 8 MB and comes from memory
    on every pass; several resamples' counts share one pass, each leaf's
    values staying in L1 while every row sums them.  stack: (STACK_DEPTH, rows).
    """
    rows = counts.shape[0]
    top = 0
    for step in plan:
        if step == COMBINE:
            top -= 1
            for r in range(rows):
                stack[top - 1, r] = stack[top - 1, r] + stack[top, r]
        else:
            start = step >> 8
            length = step & 255
            for r in range(rows):
                stack[top, r] = _weighted_leaf(values, counts[r], start, length)
            top += 1
    for r in range(rows):
        out[r] = stack[0, r]
