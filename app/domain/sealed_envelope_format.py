"""Sealed Envelope's randomisation lists, both ways (docs/randomization.md, "Other formats").

Two layouts are read, header case ignored, columns in any order:
- the list generator's: `Randomisation code` (optional), one column per stratification factor,
  `Block identifier`, `Block size`, `Sequence within block`, `Treatment`; block identifiers may
  run across the whole file or restart in each stratum;
- the list layout of Sealed Envelope's help pages: `Sequence` (within the stratum), `Block`,
  `Block size`, `Treatment` and the strata columns.
The export writes the generator's layout with the opaque numbers of `list_blocks` as codes, so a
subject's code is the same as in the REDCap table. A strata column is the factor's code
(`SLEDAI`), its field name (`sledai_2k_score`) or a header mapped to it; a value is `<10`, `>=10`,
`≥10` or the whole level (`SLEDAI<10`), spaces ignored.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping

from app.domain import list_blocks
from app.domain import randomization_list as rl
from app.domain.list_table import (
    factors,
    first_row,
    read_table,
    scope_of,
    stratum_of,
    validate,
    where,
)
from app.domain.study import ListScope, StrataFactor, StudyDefinition

CODE = "Randomisation code"
BLOCK_ID = "Block identifier"
SIZE = "Block size"
IN_BLOCK = "Sequence within block"
TREATMENT = "Treatment"
SEQUENCE = "Sequence"
BLOCK = "Block"
GENERATOR_COLUMNS = (BLOCK_ID, SIZE, IN_BLOCK, TREATMENT)
LIST_COLUMNS = (SEQUENCE, BLOCK, SIZE, TREATMENT)
_HINTS = {
    "redcap_randomization_number": "a REDCap column: use --format redcap",
    "redcap_randomization_group": "a REDCap column: use --format redcap",
    **{c: "a canonical list column: use --format canonical" for c in rl.CSV_COLUMNS},
}

Row = tuple[int, tuple[str, str, int, int, int, str]]


def level_label(factor: StrataFactor, level: str) -> str:
    """`SLEDAI>=10` -> `>=10`: the category as the export writes it."""
    return level[len(factor.code) :]


def to_sealed_envelope(slots: Iterable[rl.Slot], study: StudyDefinition, scope_code: str) -> str:
    """One scope in the generator's layout: strata in definition order, each by sequence, block
    identifiers running across the file, CRLF line ends."""
    scope = scope_of(study, scope_code)
    position = {stratum: i for i, stratum in enumerate(scope.strata)}
    chosen = sorted(
        (s for s in slots if s.scope == scope.code), key=lambda s: (position[s.stratum], s.sequence)
    )
    numbers = list_blocks.opaque_numbers(chosen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((CODE, *(f.code for f in factors(study, scope)), *GENERATOR_COLUMNS))
    block_id, last, start = 0, ("", 0), 0
    for s in chosen:
        if (s.stratum, s.block) != last:
            block_id, last, start = block_id + 1, (s.stratum, s.block), s.sequence
        levels = s.stratum.split("/") if factors(study, scope) else []
        labels = [level_label(f, lvl) for f, lvl in zip(factors(study, scope), levels, strict=True)]
        writer.writerow(
            (
                numbers[(s.stratum, s.sequence)],
                *labels,
                block_id,
                s.block_size,
                s.sequence - start + 1,
                study.arm(s.arm).name,
            )
        )
    return out.getvalue()


def parse_sealed_envelope(
    text: str, study: StudyDefinition, scope_code: str, *, aliases: Mapping[str, str] | None = None
) -> list[rl.Slot]:
    """A Sealed Envelope list of one scope, validated like the canonical CSV."""
    scope = scope_of(study, scope_code)
    strata = {f.code: f for f in factors(study, scope)}
    header_cells = [cell.lower() for cell in first_row(text)]
    renamed = (
        {f.field: f.code for f in strata.values()}
        | _named_by_code(first_row(text), strata)
        | dict(aliases or {})
    )
    generator = BLOCK_ID.lower() in header_cells or IN_BLOCK.lower() in header_cells
    table = read_table(
        text,
        required=(*(GENERATOR_COLUMNS if generator else LIST_COLUMNS), *strata),
        optional=(CODE,),
        aliases=renamed,
        fold_case=True,
        mapping_hint=(
            "a strata column is the factor's code, its field name, a header starting with the "
            "code, or a column mapped with --column 'THEIRS=CODE' (" + ", ".join(strata) + ")"
            if strata
            else ""
        ),
        hint=lambda h: (
            f"a stratification column, but {scope.code} has no strata: is this the P2 list?"
            if not strata
            and any(h.upper().startswith(f.code) for f in study.phase_ii.strata_factors)
            else _HINTS.get(h.lower())
        ),
    )
    arm_of = {a.code.lower(): a.code for a in study.arms} | {
        a.name.lower(): a.code for a in study.arms
    }
    problems: list[str] = []
    good: list[tuple[int, str, str, str, str, str]] = []
    codes: dict[str, int] = {}
    for row_no, cells in table.rows:
        bad: list[str] = []
        treatment = table.cell(cells, TREATMENT)
        arm = arm_of.get(treatment.lower())
        if arm is None:
            known = ", ".join(f"{a.code} or {a.name}" for a in study.arms)
            bad.append(f"{where(row_no, TREATMENT)}: {treatment!r} is not an arm ({known})")
        stratum = stratum_of(
            scope,
            values=[(f, code, table.cell(cells, code)) for code, f in strata.items()],
            level_of=_level,
            row=row_no,
            bad=bad,
        )
        code = table.cell(cells, CODE)
        if code and code in codes:
            bad.append(f"{where(row_no, CODE)}: {code!r} is also the code of row {codes[code]}")
        codes.setdefault(code, row_no)
        first, second, third = (
            table.cell(cells, c)
            for c in ((BLOCK_ID, SIZE, IN_BLOCK) if generator else LIST_COLUMNS[:3])
        )
        if bad:
            problems += bad
            continue
        assert stratum is not None and arm is not None
        good.append((row_no, stratum, arm, first, second, third))
    rows = _generator_rows(good, scope) if generator else _list_rows(good, scope)
    problems += [p for p in rows if isinstance(p, str)]
    return validate(
        [r for r in rows if not isinstance(r, str)], problems=problems, study=study, scope=scope
    )


def _named_by_code(cells: list[str], strata: Mapping[str, StrataFactor]) -> dict[str, str]:
    """Headers the way people name a factor in Sealed Envelope ("SLEDAI-2K score", "Prednisone
    dose"): a header that starts with the code of exactly one factor, and with no other's, names
    that factor, unless a header is that code already."""
    taken = {c.upper() for c in cells}
    out: dict[str, str] = {}
    for cell in cells:
        matches = [code for code in strata if cell.upper().startswith(code.upper())]
        if len(matches) == 1 and matches[0].upper() not in taken and cell.upper() != matches[0]:
            out[cell] = matches[0]
    return out if len(set(out.values())) == len(out) else {}


def _level(factor: StrataFactor, value: str) -> str | None:
    compact = value.replace(" ", "").replace("≥", ">=")
    for level in factor.levels():
        if compact.upper() in (level.upper(), level_label(factor, level).upper()):
            return level
    return None


def _whole(row_no: int, name: str, raw: str, problems: list[str | Row]) -> int | None:
    if raw.isascii() and raw.isdigit() and int(raw) >= 1:
        return int(raw)
    problems.append(f"{where(row_no, name)}: {raw!r} is not a whole number >= 1")
    return None


def _list_rows(
    good: list[tuple[int, str, str, str, str, str]], scope: ListScope
) -> list[str | Row]:
    out: list[str | Row] = []
    for row_no, stratum, arm, sequence, block, size in good:
        values = [
            _whole(row_no, n, v, out)
            for n, v in zip(LIST_COLUMNS, (sequence, block, size), strict=False)
        ]
        if None not in values:
            seq, blk, sz = (v for v in values if v is not None)
            out.append((row_no, (scope.code, stratum, seq, blk, sz, arm)))
    return out


def _generator_rows(
    good: list[tuple[int, str, str, str, str, str]], scope: ListScope
) -> list[str | Row]:
    """Sequence = order within the stratum; blocks renumbered 1, 2, ... per stratum in order of
    appearance; `Sequence within block` must run 1, 2, ... inside each block."""
    out: list[str | Row] = []
    count: dict[str, int] = defaultdict(int)
    blocks: dict[str, dict[str, int]] = defaultdict(dict)
    seen_in_block: dict[tuple[str, str], int] = defaultdict(int)
    for row_no, stratum, arm, block_id, size, in_block in good:
        values = [_whole(row_no, n, v, out) for n, v in ((SIZE, size), (IN_BLOCK, in_block))]
        if not block_id:
            out.append(f"{where(row_no, BLOCK_ID)}: empty")
            continue
        if None in values:
            continue
        count[stratum] += 1
        block = blocks[stratum].setdefault(block_id, len(blocks[stratum]) + 1)
        seen_in_block[(stratum, block_id)] += 1
        if values[1] != seen_in_block[(stratum, block_id)]:
            out.append(
                f"{where(row_no, IN_BLOCK)}: {in_block} where {seen_in_block[(stratum, block_id)]}"
                f" was expected (block {block_id} of stratum {stratum})"
            )
            continue
        assert values[0] is not None
        out.append((row_no, (scope.code, stratum, count[stratum], block, values[0], arm)))
    return out
