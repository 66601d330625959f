"""How a benchmark's examples may be resampled (pure: no I/O).

The independent-example bootstrap of stats.py assumes every example is an
independent draw.  Real benchmarks often hold clusters of dependent examples
(cells from one donor, visits of one patient, time points of one culture).
When two models differ per cluster, resampling examples makes the interval
about sqrt(cluster size x intra-cluster correlation) too narrow and false
promotions run far above the nominal rate (benchmarks/sim_statistics.py clustered).

A `ResamplingDesign` names the resampling unit and the strata:

* groups: example -> group code.  The unit of resampling is then the group:
  a resample draws groups with replacement and every example of a drawn
  group comes along, so an example's weight is its group's draw count.
* strata: example -> stratum code (constant within a group).  Units are
  drawn within each stratum, as many as the stratum holds, so the strata
  keep their sizes (sites, batches, a balanced design).
* stratify_by_label: without groups, draw positives among positives and
  negatives among negatives (binary labels), so every resample keeps the
  split's class counts and a rank metric is defined in every resample.
  With groups a label is not a property of the unit, so this only applies
  to example-level designs.

`draw_unit_counts` returns (rows, n_units) integer draw counts, chunk by
chunk from one Generator; `unit_of_example` maps them back to examples.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Resamples drawn per chunk for a design: fixed, so the resamples depend on
#: the seed alone (not on memory or on how many resamples are asked for).
DESIGN_CHUNK_ROWS = 250


class DesignError(ValueError):
    """A resampling design that cannot be applied to these examples."""


def _codes(values: Sequence[Any], what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dense integer codes 0..K-1 in order of first appearance, and the names behind them."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        array = array.astype(str)
        empty = np.flatnonzero(array == "")
        if empty.size:
            raise DesignError(f"{what} of example {int(empty[0]) + 1} is empty")
    names, first, inverse = np.unique(array, return_index=True, return_inverse=True)
    rank = np.empty(names.size, dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(names.size)
    order = np.argsort(first, kind="stable")
    return rank[inverse].astype(np.intp), tuple(str(name) for name in names[order])


@dataclass(frozen=True, eq=False)
class ResamplingDesign:
    """Units and strata for the paired bootstrap; see the module docstring.

    Build it with `from_columns`.  `unit_of_example[j]` is the unit example j
    belongs to (its group, or itself without groups); `unit_stratum[u]` the
    stratum unit u is drawn within.
    """

    n_examples: int
    unit_of_example: np.ndarray
    unit_stratum: np.ndarray
    n_units: int
    n_strata: int
    grouped: bool
    group_label: str = "group"
    stratified: bool = False
    stratify_by_label: bool = False
    unit_sizes: np.ndarray = field(default=None)  # examples per unit

    @classmethod
    def from_columns(cls, n_examples: int, *, groups: Sequence[Any] | None = None,
                     strata: Sequence[Any] | None = None, labels: Any = None,
                     stratify_by_label: bool = False, group_label: str = "group") -> "ResamplingDesign":
        """A design from per-example group and stratum values (any hashable, compared as text)."""
        if n_examples < 2:
            raise DesignError(f"a bootstrap needs at least 2 examples, got {n_examples}")
        for name, column in (("groups", groups), ("strata", strata)):
            if column is not None and len(column) != n_examples:
                raise DesignError(f"{name} has {len(column)} values for {n_examples} examples")
        if stratify_by_label and groups is not None:
            raise DesignError("stratify_by_label applies to example-level designs; with groups, "
                              "declare strata of groups instead (a group holds both classes)")
        if groups is not None:
            unit_of_example, _ = _codes(groups, group_label)
            n_units = int(unit_of_example.max()) + 1
        else:
            unit_of_example = np.arange(n_examples, dtype=np.intp)
            n_units = n_examples
        example_stratum = np.zeros(n_examples, dtype=np.intp)
        if strata is not None:
            example_stratum, _ = _codes(strata, "stratum")
        if stratify_by_label:
            if labels is None:
                raise DesignError("stratify_by_label needs the labels")
            label_codes, _ = _codes(np.asarray(labels).tolist(), "label")
            example_stratum = example_stratum * (int(label_codes.max()) + 1) + label_codes
        unit_stratum = np.full(n_units, -1, dtype=np.intp)
        unit_stratum[unit_of_example] = example_stratum
        if groups is not None and not np.array_equal(unit_stratum[unit_of_example], example_stratum):
            mixed = np.flatnonzero(unit_stratum[unit_of_example] != example_stratum)
            raise DesignError(f"the stratum must be the same for every example of a {group_label}; "
                              f"example {int(mixed[0]) + 1} differs from others of its {group_label}")
        _, unit_stratum = np.unique(unit_stratum, return_inverse=True)
        n_strata = int(unit_stratum.max()) + 1
        sizes = np.bincount(unit_stratum, minlength=n_strata)
        if groups is not None and (sizes < 2).any():
            raise DesignError(f"every stratum needs at least 2 {group_label}s to resample; "
                              f"{int((sizes < 2).sum())} stratum/strata hold only one")
        return cls(n_examples=n_examples, unit_of_example=unit_of_example, unit_stratum=unit_stratum.astype(np.intp),
                   n_units=n_units, n_strata=n_strata, grouped=groups is not None, group_label=group_label,
                   stratified=strata is not None, stratify_by_label=stratify_by_label,
                   unit_sizes=np.bincount(unit_of_example, minlength=n_units))

    @property
    def is_independent(self) -> bool:
        """True when this is stats.py's plain design (every example its own unit, one stratum)."""
        return not self.grouped and self.n_strata == 1

    def describe(self) -> str:
        """A phrase for verdicts: what a resample draws."""
        if self.grouped:
            what = f"{self.n_units} {self.group_label}s"
        else:
            what = f"{self.n_units} examples"
        if self.stratified and self.stratify_by_label:
            return f"{what} within {self.n_strata} strata (declared strata x label class)"
        if self.stratified:
            return f"{what} within {self.n_strata} declared strata"
        if self.stratify_by_label:
            return f"{what} within label classes"
        return what

    def draw_unit_counts(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """(rows, n_units) int32 draw counts: each stratum draws its own size, with replacement."""
        counts = np.zeros((rows, self.n_units), dtype=np.int32)
        for stratum in range(self.n_strata):
            members = self._members[stratum]
            size = members.size
            draws = rng.integers(0, size, size=(rows, size))
            flat = (draws + (np.arange(rows) * size)[:, None]).ravel()
            counts[:, members] = np.bincount(flat, minlength=rows * size).reshape(rows, size)
        return counts

    def chunks(self, seed: int, n_resamples: int):
        """Unit counts for n_resamples resamples, DESIGN_CHUNK_ROWS at a time, from one Generator."""
        rng = np.random.default_rng(seed)
        for start in range(0, n_resamples, DESIGN_CHUNK_ROWS):
            yield start, self.draw_unit_counts(rng, min(DESIGN_CHUNK_ROWS, n_resamples - start))

    @property
    def _members(self) -> list[np.ndarray]:
        cached = self.__dict__.get("_members_cache")
        if cached is None:
            cached = [np.flatnonzero(self.unit_stratum == s) for s in range(self.n_strata)]
            object.__setattr__(self, "_members_cache", cached)
        return cached

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.group_label if self.grouped else "example",
            "n_units": int(self.n_units),
            "n_strata": int(self.n_strata),
            "stratified": self.stratified,
            "stratify_by_label": self.stratify_by_label,
        }
