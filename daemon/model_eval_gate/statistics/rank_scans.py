"""One model's passes of the compiled bootstrap: counts in score order, AUROC, average precision (pure: no I/O).

Per resample and model: _gather puts the resample's counts in the model's
ascending score order, a scan of them yields 2 x the AUROC pair count and
each positive's (count, positive weight below, negative weight below), and
_average_precision_sum turns those into the average-precision sum.  All
integer arithmetic is exact; the one float sum walks numpy's pairwise tree
(pairwise.py), so the results equal stats.py's numpy path bit for bit.
"""
from __future__ import annotations

import numpy as np

from .compiled import compiled as _compiled, numba
from .pairwise import planned_sum

if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic


#: Examples per step of the vectorised scan: 16 int32 lanes, one AVX-512 register.
LANES = 16


def _lane_shifts(builder, vector, combine):
    """Inclusive scan across the lanes of an integer vector: log2(LANES) shifts (zeros shifted in) and combines."""
    zero = ir.Constant(vector.type, None)
    shift = 1
    while shift < LANES:
        lanes = ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                            [lane - shift if lane >= shift else LANES for lane in range(LANES)])
        vector = combine(vector, builder.shuffle_vector(vector, zero, lanes))
        shift *= 2
    return vector


def _intrinsic_scan_blocks(tied: bool):
    @intrinsic
    def scan_blocks(typingctx, sorted_counts, flags, want_ap, positive_rows, stop):
        """_rank_scan (tied) or _rank_scan_untied over examples [0, stop), LANES at a time (stop a multiple of LANES).

        Returns the scalar loop's state after example stop - 1: (twice_below,
        cumulative_negative, cumulative_positive, t), and for the tied scan
        also (tied, negative_below, positive_below) of the open group.  Per
        step: the counts and labels of LANES examples; the negative and
        positive weight below each one are prefix sums across the lanes plus
        the running totals; in the tied scan a group's weights below are
        those at its first example, carried to the rest of the group by a
        running maximum across the lanes (the weights below never decrease),
        and the group's tied pairs are counted at its last example.  The
        AUROC products are summed in int64 lanes; with want_ap the
        positives' (count, positive below, negative below) are packed to the
        front of a vector (LLVM's vector.compress: AVX-512's vpcompressd)
        and stored whole at column t, the next store overwriting the lanes
        past the positives (hence the spare columns).  Integer arithmetic
        throughout, so the results are the scalar loop's.
        """
        outputs = 7 if tied else 4
        signature = types.UniTuple(types.int64, outputs)(sorted_counts, flags, want_ap, positive_rows, stop)

        def codegen(context, builder, sig, args):
            i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
            int32s, int64s, bytes_ = (ir.VectorType(i32, LANES), ir.VectorType(i64, LANES), ir.VectorType(i8, LANES))
            booleans = ir.VectorType(ir.IntType(1), LANES)
            counts = context.make_array(sig.args[0])(context, builder, args[0])
            count_type = context.get_value_type(sig.args[0].dtype)
            labels = context.make_array(sig.args[1])(context, builder, args[1])
            rows = context.make_array(sig.args[3])(context, builder, args[3])
            want, stop = args[2], args[4]
            row_stride = cgutils.unpack_tuple(builder, rows.strides, 2)[0]
            row_bytes = builder.bitcast(rows.data, i8.as_pointer())
            row_starts = [builder.bitcast(builder.gep(row_bytes, [builder.mul(row_stride, ir.Constant(i64, row))]),
                                          i32.as_pointer()) for row in range(3)]
            compress = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(int32s, [int32s, booleans, int32s]),
                "llvm.experimental.vector.compress.v16i32")
            popcount = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i16, [i16]), "llvm.ctpop.i16")

            def splat(value):
                single = builder.insert_element(ir.Constant(int32s, ir.Undefined), value, ir.Constant(i32, 0))
                return builder.shuffle_vector(single, ir.Constant(int32s, ir.Undefined),
                                              ir.Constant(ir.VectorType(i32, LANES), [0] * LANES))

            def last(vector):
                return builder.extract_element(vector, ir.Constant(i32, LANES - 1))

            def flag_set(flag, bit):
                return builder.icmp_unsigned("!=", builder.and_(flag, ir.Constant(bytes_, [bit] * LANES)),
                                             ir.Constant(bytes_, None))

            def larger(first, second):
                return builder.select(builder.icmp_signed(">", first, second), first, second)

            def total(vector):
                lanes = builder.load(vector)
                result = ir.Constant(i64, 0)
                for lane in range(LANES):
                    result = builder.add(result, builder.extract_element(lanes, ir.Constant(i32, lane)))
                return result

            twice = cgutils.alloca_once_value(builder, ir.Constant(int64s, None))
            tied_pairs = cgutils.alloca_once_value(builder, ir.Constant(int64s, None))
            negative = cgutils.alloca_once_value(builder, ir.Constant(i32, 0))
            positive = cgutils.alloca_once_value(builder, ir.Constant(i32, 0))
            group_negative = cgutils.alloca_once_value(builder, ir.Constant(i32, 0))
            group_positive = cgutils.alloca_once_value(builder, ir.Constant(i32, 0))
            kept = cgutils.alloca_once_value(builder, ir.Constant(i64, 0))
            with cgutils.for_range(builder, builder.udiv(stop, ir.Constant(i64, LANES))) as loop:
                k = builder.mul(loop.index, ir.Constant(i64, LANES))
                count = builder.load(builder.bitcast(builder.gep(counts.data, [k]),
                                                     ir.VectorType(count_type, LANES).as_pointer()), align=1)
                if count_type.width < 32:
                    count = builder.zext(count, int32s)
                flag = builder.load(builder.bitcast(builder.gep(labels.data, [k]), bytes_.as_pointer()), align=1)
                is_positive = flag_set(flag, 1)
                positive_count = builder.select(is_positive, count, ir.Constant(int32s, None))
                negative_count = builder.sub(count, positive_count)
                negative_through = _lane_shifts(builder, negative_count, builder.add)
                positive_through = _lane_shifts(builder, positive_count, builder.add)
                negative_before, positive_before = builder.load(negative), builder.load(positive)
                negative_below = builder.add(builder.sub(negative_through, negative_count), splat(negative_before))
                positive_below = builder.add(builder.sub(positive_through, positive_count), splat(positive_before))
                if tied:  # the weights below a group are those below its first example
                    is_first = flag_set(flag, 2)

                    def at_group_start(below, carried):
                        starts = builder.select(is_first, below, ir.Constant(int32s, None))
                        return larger(_lane_shifts(builder, starts, larger), splat(builder.load(carried)))

                    negative_below = at_group_start(negative_below, group_negative)
                    positive_below = at_group_start(positive_below, group_positive)
                    builder.store(last(negative_below), group_negative)
                    builder.store(last(positive_below), group_positive)
                    negative_in = builder.sub(builder.add(negative_through, splat(negative_before)), negative_below)
                    positive_in = builder.sub(builder.add(positive_through, splat(positive_before)), positive_below)
                    pairs = builder.mul(builder.zext(positive_in, int64s), builder.zext(negative_in, int64s))
                    closed = builder.select(flag_set(flag, 4), pairs, ir.Constant(int64s, None))
                    builder.store(builder.add(builder.load(tied_pairs), closed), tied_pairs)
                products = builder.mul(builder.zext(positive_count, int64s), builder.zext(negative_below, int64s))
                builder.store(builder.add(builder.load(twice), products), twice)
                builder.store(builder.add(negative_before, last(negative_through)), negative)
                builder.store(builder.add(positive_before, last(positive_through)), positive)
                with builder.if_then(want, likely=True):
                    t = builder.load(kept)
                    for start, values in zip(row_starts, (count, positive_below, negative_below)):
                        packed = builder.call(compress, [values, is_positive, ir.Constant(int32s, ir.Undefined)])
                        builder.store(packed, builder.bitcast(builder.gep(start, [t]), int32s.as_pointer()), align=4)
                    positives = builder.call(popcount, [builder.bitcast(is_positive, i16)])
                    builder.store(builder.add(t, builder.zext(positives, i64)), kept)
            parts = [total(twice), builder.zext(builder.load(negative), i64), builder.zext(builder.load(positive), i64),
                     builder.load(kept)]
            if tied:
                parts += [total(tied_pairs), builder.zext(builder.load(group_negative), i64),
                          builder.zext(builder.load(group_positive), i64)]
            return context.make_tuple(builder, sig.return_type, parts)

        return signature, codegen
    return scan_blocks


_untied_blocks = _intrinsic_scan_blocks(tied=False) if numba is not None else None
_tied_blocks = _intrinsic_scan_blocks(tied=True) if numba is not None else None


@_compiled(["void(int32[::1], uint8[::1], uint8[::1])", "void(int32[::1], int32[::1], int32[::1])"])
def _gather(order, counts, out):
    """out[k] = counts[order[k]]: the counts in one model's score order.

    Alone in its loop so that the random reads overlap: with the label
    logic in the same loop, its mispredicted branches cut them short.
    """
    for k in range(order.shape[0]):
        out[k] = counts[order[k]]


@_compiled(["int64(uint8[::1], uint8[::1], boolean, int32[:, ::1])",
            "int64(int32[::1], uint8[::1], boolean, int32[:, ::1])"])
def _rank_scan(sorted_counts, flags, want_ap, positive_rows):
    """2 x one model's AUROC pair count, from its counts in ascending score order.

    A positive wins over the negatives strictly below its tie group and ties
    with the negatives in it: 2 x wins = the sum of 2 c x (negative weight
    below the group), plus, once per group, (positive weight in it) x
    (negative weight in it).  With want_ap, column t of positive_rows gets
    the t-th positive's count, positive weight below its group and negative
    weight below its group (rows 0, 1, 2), for _average_precision_sum.
    positive_rows needs LANES spare columns (rank_workspace).
    """
    n = sorted_counts.shape[0]
    stop = n - n % LANES  # LANES examples per step (_tied_blocks), the last few one by one
    (twice_below, cumulative_negative, cumulative_positive, t, tied, negative_below,
     positive_below) = _tied_blocks(sorted_counts, flags, want_ap, positive_rows, stop)
    for k in range(stop, n):
        count = np.int64(sorted_counts[k])
        flag = flags[k]
        if flag & 2:  # first of its tie group
            negative_below = cumulative_negative
            positive_below = cumulative_positive
        positive = np.int64(flag & 1)
        positive_count = count * positive
        twice_below += positive_count * negative_below
        cumulative_negative += count - positive_count
        cumulative_positive += positive_count
        if flag & 4:  # last of its tie group
            tied += (cumulative_positive - positive_below) * (cumulative_negative - negative_below)
        if want_ap:
            # Written for every example, kept (t advances) for positives.
            positive_rows[0, t] = count
            positive_rows[1, t] = positive_below
            positive_rows[2, t] = negative_below
            t += positive
    return 2 * twice_below + tied


@_compiled(["int64(uint8[::1], uint8[::1], boolean, int32[:, ::1])",
            "int64(int32[::1], uint8[::1], boolean, int32[:, ::1])"])
def _rank_scan_untied(sorted_counts, flags, want_ap, positive_rows):
    """_rank_scan for a model whose scores are all distinct: every group is one example.

    The same results, LANES examples per step (_untied_blocks), the last
    few one by one.  positive_rows needs LANES spare columns (rank_workspace).
    """
    n = sorted_counts.shape[0]
    stop = n - n % LANES
    twice_below, cumulative_negative, cumulative_positive, t = _untied_blocks(sorted_counts, flags, want_ap,
                                                                              positive_rows, stop)
    for k in range(stop, n):
        count = np.int64(sorted_counts[k])
        positive = np.int64(flags[k] & 1)
        positive_count = count * positive
        twice_below += positive_count * cumulative_negative
        if want_ap:
            positive_rows[0, t] = count
            positive_rows[1, t] = cumulative_positive
            positive_rows[2, t] = cumulative_negative
            t += positive
        cumulative_negative += count - positive_count
        cumulative_positive += positive_count
    return 2 * twice_below


@_compiled("float64(int32[:, ::1], int64, int64, float64[::1], int64[::1], float64[::1])")
def _average_precision_sum(positive_rows, total, positive_total, terms, plan, stack):
    """Sum over positives (ascending score order) of c x precision at its score, pairwise.

    Precision at s is (P - positive weight below s) / (weight at or above s).
    The rows are columns apart (count, positive below, negative below: one
    contiguous array each), so the divisions vectorise; plan is
    pairwise_plan(number of positives).
    """
    counts, positive_below, negative_below = positive_rows[0], positive_rows[1], positive_rows[2]
    for t in range(terms.shape[0]):
        at_or_above = float(total - positive_below[t] - negative_below[t])
        if at_or_above == 0.0:  # only where every count here is 0: the term is 0 anyway
            at_or_above = 1.0
        terms[t] = float(positive_total - positive_below[t]) / at_or_above * float(counts[t])
    return 0.0 + planned_sum(terms, plan, stack)  # numpy's reduction starts at 0.0
