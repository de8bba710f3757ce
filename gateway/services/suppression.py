"""Small-cell suppression of published tables of counts of people.

A count of 1 to 4 people is never published (primary suppression, shown ``<5``): in a region
and a quarter that small, the count points at people. Hiding it is not enough where totals are
published too: a row whose total is known and whose other cells are known gives the hidden one
away by subtraction. So more cells are hidden (complementary suppression, shown ``x``) until no
published relation (a row or column with its total) can be solved for a hidden cell:

- no relation has exactly one hidden entry (differencing);
- and no hidden entry is pinned to one value by the others' known bounds — a reader knows a
  ``<5`` cell is 1 to 4 and an ``x`` cell is at least 5, so ``<5`` + ``x`` = 6 would still say
  1 and 5. Each relation is checked with interval bounds, and another cell is hidden while one
  is pinned.

Complements are the smallest non-zero entries that work, so as little as possible is hidden.
Zeros are published: hiding a zero protects nobody, and a zero chosen as a complement could
itself be worked out. The table is suppressed once, whole; filters only select from the result,
so two differently filtered views never disagree or add new totals to subtract.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SMALL", "Cell", "Hidden", "SuppressedTable", "suppress"]

SMALL = range(1, 5)
"""Counts of people that are never published."""


class Hidden(enum.StrEnum):
    SMALL = "<5"
    """Primary: the count is 1 to 4."""
    COMPLEMENTARY = "x"
    """Hidden so that a small count cannot be worked out from the totals."""


@dataclass(frozen=True, slots=True)
class Cell:
    value: int
    hidden: Hidden | None = None

    @property
    def published(self) -> int | str:
        return self.value if self.hidden is None else self.hidden.value


@dataclass(frozen=True, slots=True)
class SuppressedTable:
    """``cells[r][c]``, with ``row_totals[r]`` and ``column_totals[c]`` and ``grand_total`` where asked for."""

    cells: tuple[tuple[Cell, ...], ...]
    row_totals: tuple[Cell, ...] | None
    column_totals: tuple[Cell, ...] | None
    grand_total: Cell | None


# An entry's position: ("cell", r, c), ("row", r), ("column", c) or ("grand",).
_Position = tuple


def suppress(values: Sequence[Sequence[int]], *, row_totals: bool = True, column_totals: bool = True,
             sensitive: Sequence[Sequence[bool]] | None = None, sensitive_totals: Sequence[bool] | None = None,
             ) -> SuppressedTable:
    """``values`` (rows of non-negative counts) with totals, suppressed as the module describes.

    ``sensitive`` marks more cells (and ``sensitive_totals`` column totals) to hide whatever their
    value, shown ``x`` unless they are small: a count of those who re-offended that is a few short of
    the cohort tells what happened to those few.
    """
    rows = len(values)
    columns = len(values[0]) if rows else 0
    if any(len(row) != columns for row in values) or any(v < 0 for row in values for v in row):
        raise ValueError("a table is rows of equal length of non-negative counts")
    entries: dict[_Position, int] = {("cell", r, c): values[r][c] for r in range(rows) for c in range(columns)}
    lines: list[list[tuple[_Position, int]]] = []  # each: sum(coefficient * entry) == 0
    if row_totals:
        for r in range(rows):
            entries[("row", r)] = sum(values[r])
            lines.append([(("cell", r, c), 1) for c in range(columns)] + [(("row", r), -1)])
    if column_totals:
        for c in range(columns):
            entries[("column", c)] = sum(values[r][c] for r in range(rows))
            lines.append([(("cell", r, c), 1) for r in range(rows)] + [(("column", c), -1)])
    if row_totals and column_totals:
        entries[("grand",)] = sum(map(sum, values))
        lines.append([(("row", r), 1) for r in range(rows)] + [(("grand",), -1)])
        lines.append([(("column", c), 1) for c in range(columns)] + [(("grand",), -1)])

    hidden: dict[_Position, Hidden] = {}
    for r, row in enumerate(sensitive or ()):
        hidden.update({("cell", r, c): Hidden.COMPLEMENTARY for c, flag in enumerate(row) if flag})
    if column_totals:
        hidden.update({("column", c): Hidden.COMPLEMENTARY for c, flag in enumerate(sensitive_totals or ()) if flag})
    hidden.update({p: Hidden.SMALL for p, v in entries.items() if v in SMALL})
    # Each complement is a new entry hidden for good, so this ends (at worst with all hidden).
    while (line := next((line for line in lines if _exposed(line, entries, hidden)), None)) is not None:
        candidates = sorted((p for p, _ in line if p not in hidden and entries[p] > 0),
                            key=lambda p: (entries[p], p[0] != "cell", p))
        if not candidates:
            break  # unreachable: a line with a pinned entry always has a non-zero published one
        chosen = next((p for p in candidates if not _exposed(line, entries, hidden | {p: Hidden.COMPLEMENTARY})),
                      candidates[0])
        hidden[chosen] = Hidden.COMPLEMENTARY

    def cell(position: _Position) -> Cell:
        return Cell(entries[position], hidden.get(position))

    return SuppressedTable(
        cells=tuple(tuple(cell(("cell", r, c)) for c in range(columns)) for r in range(rows)),
        row_totals=tuple(cell(("row", r)) for r in range(rows)) if row_totals else None,
        column_totals=tuple(cell(("column", c)) for c in range(columns)) if column_totals else None,
        grand_total=cell(("grand",)) if row_totals and column_totals else None,
    )


def _bounds(kind: Hidden) -> tuple[float, float]:
    return (1, 4) if kind is Hidden.SMALL else (5, math.inf)


def _exposed(line: list[tuple[_Position, int]], entries: dict[_Position, int], hidden: dict[_Position, Hidden]
             ) -> bool:
    """Whether a reader can work out a hidden entry of ``line`` from what is published."""
    unknown = [(p, a) for p, a in line if p in hidden]
    if not unknown:
        return False
    if len(unknown) == 1:
        return True
    known = sum(a * entries[p] for p, a in line if p not in hidden)
    for position, coefficient in unknown:
        # coefficient * x = -known - sum(others): the others' bounds bound x.
        low = high = -known
        for other, a in unknown:
            if other == position:
                continue
            lo, hi = _bounds(hidden[other])
            low -= max(a * lo, a * hi)
            high -= min(a * lo, a * hi)
        lo_x, hi_x = sorted((low / coefficient, high / coefficient))
        own_lo, own_hi = _bounds(hidden[position])
        if max(lo_x, own_lo) == min(hi_x, own_hi):
            return True
    return False
