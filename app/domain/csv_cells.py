"""CSV text that a spreadsheet opens as data, never as formulas (OWASP "CSV injection").

Every CSV the service writes (reports, the forecast, the allocations, the SDTM datasets and
define.csv, the simulation, the generated kit list) goes through `csv_text`. A reason, a lot or
a name typed by a user can start with `=`, and a spreadsheet would run `=HYPERLINK(...)` or
`=cmd|...` when the file is opened. Pure code.

Written as they are, on purpose: the randomization list files (canonical and REDCap). The
canonical text is hashed for the list's commitment and both are read back by the import; every
cell is a study code or a whole number that cannot start a formula (docs/decisions.md,
"Security, unblinding and the audit trail").
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may take as the start of a formula (OWASP's list)."""


def csv_cell(value: object) -> str:
    """The text of one cell, with a leading single quote when it starts with =, +, -, @, a tab
    or a carriage return; None is an empty cell and a bool `true` or `false`.

    The rule looks at the text, not at the type, so negative numbers are quoted too (-3 is
    written '-3). A negative balance is data, not a formula, but a spreadsheet decides by the
    first character as well: `-3` and `-2+3+cmd|' /C calc'!A0` both start with a minus, and
    telling them apart would mean parsing what the spreadsheet parses. One rule for every cell
    keeps a simple promise that a reader can check: no cell of the file starts a formula. The
    figures stay exact; a program strips the quote before computing (docs/forecast.md)."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A header and rows as CSV, every cell through `csv_cell`, lines ending in `\\n`.

    A cell with a comma, a quote, a line feed or a carriage return is quoted. The `csv` module
    quotes for the characters of its line terminator only, so with `\\n` a lone carriage return
    went out bare, and a spreadsheet starts a new row there: `x\\r=cmd|...` would have put a
    formula at the start of a line. Each row is therefore written with `\\r\\n` (both quoted)
    and its line end then shortened to `\\n`."""
    out, line = io.StringIO(), io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    for row in itertools.chain([header], rows):
        line.seek(0)
        line.truncate()
        writer.writerow([csv_cell(v) for v in row])
        out.write(line.getvalue()[:-2] + "\n")
    return out.getvalue()


def csv_records(columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> str:
    """Records (dicts) as CSV in the order of `columns`; a missing key is an empty cell."""
    return csv_text(columns, ([record.get(c) for c in columns] for record in records))
