"""Small-cell suppression: no count of 1-4 is published, and none can be worked out from the totals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.services.suppression import Hidden, SuppressedTable, suppress


def _lines(table: SuppressedTable) -> list[list]:
    """Every published relation: a row or column of entries with its total (the total last)."""
    cells = table.cells
    lines = []
    if table.row_totals is not None:
        lines += [[*row, total] for row, total in zip(cells, table.row_totals, strict=True)]
    if table.column_totals is not None:
        lines += [[*column, total] for column, total in zip(zip(*cells), table.column_totals, strict=True)]
    if table.grand_total is not None:
        lines += [[*table.row_totals, table.grand_total], [*table.column_totals, table.grand_total]]
    return lines


def recoveries(table: SuppressedTable) -> list[int]:
    """Try every recovery by differencing: each relation with one hidden entry gives it away,
    and what is recovered is used again, until nothing more comes out."""
    lines = [[[cell.value, cell.hidden is not None] for cell in line] for line in _lines(table)]
    # Entries are shared between lines: recover by identity, not by copy.
    identities: dict[int, list] = {}
    shared = []
    for line, original in zip(lines, _lines(table), strict=True):
        shared.append([identities.setdefault(id(cell), entry) for cell, entry in zip(original, line, strict=True)])
    recovered = []
    progress = True
    while progress:
        progress = False
        for line in shared:
            hidden = [entry for entry in line if entry[1]]
            if len(hidden) == 1:
                # total - (the other entries) or the total itself: the one hidden entry follows.
                hidden[0][1] = False
                recovered.append(hidden[0][0])
                progress = True
    return recovered


def published(table: SuppressedTable) -> list:
    return [cell.published for line in _lines(table) for cell in line]


def test_a_small_cell_is_shown_as_fewer_than_five():
    table = suppress([[3, 10], [12, 20]])
    assert table.cells[0][0].published == "<5"


def test_a_single_small_cell_is_protected_by_complements_in_its_row_and_column():
    table = suppress([[3, 10, 7], [12, 20, 9], [6, 8, 11]])
    assert recoveries(table) == []
    hidden = [(r, c) for r, row in enumerate(table.cells) for c, cell in enumerate(row) if cell.hidden]
    assert (0, 0) in hidden and len(hidden) >= 4


def test_zeros_are_published_and_never_chosen_as_complements():
    table = suppress([[0, 2, 0], [0, 9, 0]], row_totals=False)
    assert [cell.published for cell in table.cells[0]] == [0, "<5", 0]
    assert table.cells[1][1].hidden is Hidden.COMPLEMENTARY or table.column_totals[1].hidden is not None


def test_a_small_cell_next_to_a_five_is_not_left_pinned_by_the_bounds():
    # 1 + 5 = 6 with "<5" meaning 1-4 and "x" meaning at least 5 would give both away.
    table = suppress([[1], [5], [30]], row_totals=False)
    assert table.cells[1][0].hidden is None and table.cells[2][0].hidden is Hidden.COMPLEMENTARY


def test_a_table_with_only_column_totals_is_protected_down_each_column():
    table = suppress([[2, 40], [15, 3], [9, 22]], row_totals=False)
    assert recoveries(table) == []
    assert all(not isinstance(v, int) or v == 0 or v >= 5 for v in published(table))


counts = st.one_of(st.integers(0, 6), st.integers(0, 60))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6).flatmap(lambda columns: st.lists(st.lists(counts, min_size=columns, max_size=columns),
                                                          min_size=1, max_size=6)),
       st.booleans(), st.booleans())
def test_no_published_number_is_under_five_and_nothing_hidden_can_be_recovered(values, rows, columns):
    table = suppress(values, row_totals=rows, column_totals=columns)
    assert all(not isinstance(v, int) or v == 0 or v >= 5 for v in published(table))
    assert all(not isinstance(cell.published, int) or cell.published == 0 or cell.published >= 5
               for row in table.cells for cell in row)
    assert recoveries(table) == []
