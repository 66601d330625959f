"""statistics/pairwise.py: the compiled sums take numpy's pairwise order, bit for bit.

Every float the compiled bootstrap returns is one of these sums, so the
engines agree only if each planned, vectorised sum rounds exactly as numpy's
own ``pairwise_sum`` does: the same tree (pairwise_plan), the same 8 running
sums per leaf (one 8-wide vector in the kernel), no fused multiply-add.
"""
from __future__ import annotations

import numpy as np
import pytest

from model_eval_gate.statistics import compiled, pairwise


def test_numba_is_present():
    # A missing numba would make every test below vacuous; it is a dependency.
    assert compiled.AVAILABLE


# Lengths around every boundary of numpy's tree: below 8 (one running sum),
# 8..128 (one leaf of 8), a leaf's tail (count % 8), the first splits, and
# large runs whose halves are rounded to a multiple of 8.
LENGTHS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 135, 136, 255, 256, 257, 1000, 1023, 4097, 65_537,
           300_001]


def awkward_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Signed values over 16 orders of magnitude, with exact zeros and negative zeros: rounding shows."""
    values = rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, n)
    values[rng.random(n) < 0.05] = 0.0
    values[rng.random(n) < 0.05] = -0.0
    return values


@pytest.mark.parametrize("n", LENGTHS)
def test_planned_sums_equal_numpys_sum(n):
    rng = np.random.default_rng(n)
    values = awkward_values(rng, n)
    counts = rng.poisson(1.0, n).astype(np.uint8)
    wide = (rng.poisson(1.0, n) * 1000 - 7).astype(np.int32)
    plan, stack = pairwise.pairwise_plan(n), np.empty(pairwise.STACK_DEPTH)
    expected = np.sum(values)
    assert 0.0 + pairwise.planned_sum(values, plan, stack) == expected
    assert 0.0 + pairwise._pairwise_sum(values, 0, n) == expected
    for weights in (counts, wide):
        expected = np.multiply(weights, values, dtype=np.float64).sum()
        got = 0.0 + pairwise.planned_weighted(values, weights, plan, stack)
        assert got == expected and np.signbit(got) == np.signbit(expected), weights.dtype
        assert 0.0 + pairwise._pairwise_weighted(values, weights, 0, n) == expected


def test_several_rows_share_one_pass_and_each_equals_its_own_sum():
    rng = np.random.default_rng(11)
    n = 100_003
    values = awkward_values(rng, n)
    counts = rng.poisson(1.0, (5, n)).astype(np.uint8)
    out = np.empty(5)
    pairwise.planned_weighted_rows(values, counts, pairwise.pairwise_plan(n), np.empty((pairwise.STACK_DEPTH, 5)),
                                   out)
    assert out.tolist() == np.multiply(counts, values, dtype=np.float64).sum(axis=1).tolist()


def test_the_plan_is_numpys_tree():
    # Leaves of at most 128 values in order, covering [0, n) once, and one
    # COMBINE per split: a postorder program of 2 x leaves - 1 steps.
    for n in (0, 5, 128, 129, 1000, 1_000_000):
        plan = pairwise.pairwise_plan(n)
        leaves = plan[plan != pairwise.COMBINE]
        starts, lengths = leaves >> 8, leaves & 255
        assert lengths.max() <= pairwise.LEAF
        assert starts[0] == 0 and np.array_equal(starts[1:], np.cumsum(lengths)[:-1])
        assert lengths.sum() == n
        assert plan.size == 2 * leaves.size - 1
    # The first split of 1000 values is at 496 (half of 1000 rounded down to a multiple of 8).
    first = pairwise.pairwise_plan(1000)
    first_leaves = first[first != pairwise.COMBINE]
    assert 496 in (first_leaves >> 8).tolist()
