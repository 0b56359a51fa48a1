"""CSV cells (app/domain/csv_cells.py): no cell a spreadsheet reads starts a formula, and every
other cell is written exactly as before."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.domain.csv_cells import FORMULA_STARTS, csv_cell, csv_records, csv_text

cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(FORMULA_STARTS).flatmap(lambda s: st.text(max_size=20).map(lambda t: s + t)),
)


def test_examples() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'):
        assert csv_cell(text) == f"'{text}"
    assert csv_cell(-3) == "'-3" and csv_cell(Decimal("-0.5")) == "'-0.5"
    assert csv_cell(3) == "3" and csv_cell("DE01") == "DE01" and csv_cell("a=b") == "a=b"
    assert csv_cell(None) == "" and csv_cell(True) == "true" and csv_cell(False) == "false"
    assert csv_cell(" =1") == " =1" and csv_cell("'=1") == "'=1"


@given(value=cells)
def test_a_cell_never_starts_a_formula_and_only_gains_a_quote(value: object) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(FORMULA_STARTS)
    plain = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    assert cell in (plain, f"'{plain}")
    assert (cell == f"'{plain}") == plain.startswith(FORMULA_STARTS)


@given(
    header=st.lists(st.text(max_size=10), min_size=1, max_size=5),
    rows=st.lists(st.lists(cells, min_size=5, max_size=5), max_size=5),
)
def test_the_file_reads_back_cell_by_cell(header: list[str], rows: list[list[object]]) -> None:
    text = csv_text(header, [row[: len(header)] for row in rows])
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == [csv_cell(h) for h in header]
    assert table[1:] == [[csv_cell(v) for v in row[: len(header)]] for row in rows]
    for line in table:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in line)


def test_records_follow_the_columns_and_leave_missing_keys_empty() -> None:
    text = csv_records(("a", "b", "c"), [{"c": "-1", "a": "=x"}, {"b": 2}])
    assert text == "a,b,c\n'=x,,'-1\n,2,\n"


def test_a_carriage_return_inside_a_cell_cannot_start_a_row() -> None:
    """Found by the property above: the csv module left a lone CR unquoted with `\\n` line ends,
    and a spreadsheet starts a new row at a CR, here with a formula."""
    text = csv_text(["reason"], [['see the log\r=HYPERLINK("http://x","y")'], ["a\r\nb"]])
    assert text == 'reason\n"see the log\r=HYPERLINK(""http://x"",""y"")"\n"a\r\nb"\n'
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table == [["reason"], ['see the log\r=HYPERLINK("http://x","y")'], ["a\r\nb"]]
