"""Reading a list file written by another tool (REDCap, Sealed Envelope): its header, its data
rows under the file's own row numbers, and the columns such tools add that carry no allocation.

Pure code shared by `redcap_format` and `sealed_envelope_format`. What is tolerated is what the
tools themselves write or accept: a byte order mark, CRLF or LF line ends, quoted cells, blank
rows, columns with a blank header (REDCap's templates and spreadsheets leave them) and a notes
column. Everything else that is not a known column is refused by name, with a hint when the
file looks like another layout or another scope, so that a mixed-up file never imports.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.domain import randomization_list as rl
from app.domain.study import NO_STRATUM, ListScope, StrataFactor, StudyDefinition

NOTES_HEADERS = frozenset({"", "notes", "note", "comments", "comment", "remarks"})
_ROW = re.compile(r"^row (?P<row>[0-9]+):")


@dataclass(frozen=True)
class Table:
    """A file's known columns (our name -> position) and its non-blank data rows."""

    columns: dict[str, int]
    rows: list[tuple[int, tuple[str, ...]]]
    header: tuple[str, ...] = ()
    """The header cells as the file spells them (for messages)."""
    """(row number in the file, the header being row 1; the row's cells, stripped)."""

    def cell(self, cells: tuple[str, ...], name: str) -> str:
        index = self.columns.get(name)
        return "" if index is None or index >= len(cells) else cells[index]

    def has(self, name: str) -> bool:
        return name in self.columns


def where(row: int, column: str) -> str:
    """How a problem names its place: the file's row and the column as the file spells it."""
    return f"row {row}, column {column!r}"


def read_table(
    text: str,
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    aliases: Mapping[str, str] | None = None,
    fold_case: bool = False,
    hint: Callable[[str], str | None] = lambda _: None,
    mapping_hint: str = "",
) -> Table:
    """Parse `text`; raise `ListImportError` naming every header problem at once.

    `aliases` maps a header as the file spells it to one of our column names (a documented
    mapping for a tool's own field names); `fold_case` ignores case in headers; `hint` explains
    an unknown header (e.g. "this is a Sealed Envelope column"); `mapping_hint` says how to
    map a column the file names its own way."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise rl.ListImportError(["the file is empty"]) from None
    except csv.Error as exc:
        raise rl.ListImportError([f"row 1: not a readable CSV row ({exc})"]) from None
    known = {_key(name, fold_case): name for name in (*required, *optional)}
    renamed = {_key(k, fold_case): v for k, v in (aliases or {}).items()}
    columns: dict[str, int] = {}
    problems: list[str] = []
    for index, raw in enumerate(header):
        name = known.get(_key(renamed.get(_key(raw, fold_case), raw), fold_case))
        if name is None:
            if raw.lower() not in NOTES_HEADERS:
                extra = hint(raw)
                problems.append(
                    f"header, column {index + 1} {raw!r}: not a column of this layout"
                    + (f" ({extra})" if extra else "")
                )
        elif name in columns:
            problems.append(
                f"header, column {index + 1} {raw!r}: {name!r} appears twice "
                f"(columns {columns[name] + 1} and {index + 1})"
            )
        else:
            columns[name] = index
    missing = [name for name in required if name not in columns]
    problems += [f"header: column {name!r} is missing" for name in missing]
    if missing and mapping_hint:
        problems.append(f"header: {mapping_hint}")
    if problems:
        raise rl.ListImportError(problems)
    rows = _rows(reader, width=len(header), used=set(columns.values()))
    return Table(columns, rows, tuple(header))


def first_row(text: str) -> list[str]:
    """The header cells, stripped; none if the first row is not readable CSV (`read_table`
    then says why)."""
    try:
        return [
            c.strip() for c in next(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")), [])
        ]
    except csv.Error:
        return []


def _key(name: str, fold_case: bool) -> str:
    return name.strip().lower() if fold_case else name.strip()


def _rows(
    reader: Iterable[list[str]], *, width: int, used: set[int]
) -> list[tuple[int, tuple[str, ...]]]:
    rows: list[tuple[int, tuple[str, ...]]] = []
    problems: list[str] = []
    try:
        for row_no, raw in enumerate(reader, start=2):
            cells = tuple(cell.strip() for cell in raw)
            beyond = [i + 1 for i, cell in enumerate(cells) if i >= width and cell]
            if beyond:
                problems.append(
                    f"row {row_no}, column {beyond[0]}: a value beyond the header's {width} "
                    "columns (a comma inside an unquoted value?)"
                )
            elif any(cells[i] for i in used if i < len(cells)):
                rows.append((row_no, cells))
    except csv.Error as exc:
        problems.append(f"row {len(rows) + len(problems) + 2}: not a readable CSV row ({exc})")
    if problems:
        raise rl.ListImportError(problems)
    return rows


def arm_groups(study: StudyDefinition) -> dict[str, str]:
    """REDCap group value -> arm code: "1", "2", ... over the arm codes in alphabetical order."""
    return {str(i): code for i, code in enumerate(sorted(a.code for a in study.arms), start=1)}


def factors(study: StudyDefinition, scope: ListScope) -> tuple[StrataFactor, ...]:
    """The scope's stratification factors (none for a phase Ib cohort)."""
    return () if scope.strata == (NO_STRATUM,) else study.phase_ii.strata_factors


def scope_of(study: StudyDefinition, code: str) -> ListScope:
    try:
        return study.scope(code)
    except KeyError:
        known = ", ".join(s.code for s in study.scopes())
        raise rl.ListImportError([f"unknown scope {code!r} (known: {known})"]) from None


def stratum_of(
    scope: ListScope,
    *,
    values: Sequence[tuple[StrataFactor, str, str]],
    level_of: Callable[[StrataFactor, str], str | None],
    row: int,
    bad: list[str],
) -> str | None:
    """The stratum named by a row's (factor, column as spelled, value) cells, or None (and the
    problems in `bad`) when a value is not a level."""
    if not values:
        return NO_STRATUM
    levels = []
    for factor, column, value in values:
        level = level_of(factor, value)
        if level is None:
            bad.append(f"{where(row, column)}: {value!r} is not a level of {factor.code}")
        levels.append(level)
    if None in levels:
        return None
    stratum = "/".join(str(level) for level in levels)
    return stratum if stratum in scope.strata else None


def validate(
    rows: Sequence[tuple[int, tuple[str, str, int, int, int, str]]],
    *,
    problems: list[str],
    study: StudyDefinition,
    scope: ListScope,
) -> list[rl.Slot]:
    """Canonical rows (with their file row numbers) through `randomization_list.parse_csv`, so
    that the same rules apply; its problems are renamed to the file's rows. Nothing is returned
    unless there is no problem at all."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rl.CSV_COLUMNS)
    file_row = {}
    for canonical_row, (row_no, cells) in enumerate(rows, start=2):
        writer.writerow(cells)
        file_row[canonical_row] = row_no
    if not rows and not problems:
        problems = ["the file holds no slots"]
    try:
        result = rl.parse_csv(out.getvalue(), study) if rows else {}
    except rl.ListImportError as exc:
        problems = problems + [_renumber(p, file_row) for p in exc.problems]
    if problems:
        raise rl.ListImportError(problems)
    return result.get(scope.code, [])


def _renumber(problem: str, file_row: dict[int, int]) -> str:
    match = _ROW.match(problem)
    if match is None:
        return problem
    return f"row {file_row[int(match['row'])]}:{problem[match.end() :]}"
