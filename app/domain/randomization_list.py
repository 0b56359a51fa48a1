"""Stratified permuted-block randomization lists: generation, canonical form, CSV import."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.domain.prng import SeededStream
from app.domain.study import ListScope, StudyDefinition

CSV_COLUMNS = ("scope", "stratum", "sequence", "block", "block_size", "arm")


@dataclass(frozen=True, order=True)
class Slot:
    """One position of a randomization list."""

    scope: str
    stratum: str
    sequence: int
    block: int
    block_size: int
    arm: str


class ListImportError(ValueError):
    """An imported list that cannot be used; `problems` names every bad row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def block_arms(ratio: dict[str, int], size: int) -> list[str]:
    """Unshuffled arms of a block: each arm ratio x (size / ratio total) times, arms sorted."""
    per_unit = size // sum(ratio.values())
    return [arm for arm in sorted(ratio) for _ in range(ratio[arm] * per_unit)]


def generate_stratum(seed: str, scope: ListScope, stratum: str) -> list[Slot]:
    """Whole blocks until the stratum can hold the scope's cap (any stratum may take them all;
    phase II's list, the study's whole target: places may move there)."""
    stream = SeededStream(seed, f"{scope.code}|{stratum}")
    sizes = sorted(scope.allocation.block_sizes)
    slots: list[Slot] = []
    block = 0
    while len(slots) < scope.slots_per_stratum:
        block += 1
        size = sizes[stream.below(len(sizes))]
        arms = block_arms(scope.allocation.ratio, size)
        stream.shuffle(arms)
        start = len(slots)
        slots.extend(
            Slot(scope.code, stratum, start + i + 1, block, size, arm) for i, arm in enumerate(arms)
        )
    return slots


def generate_list(seed: str, scope: ListScope) -> list[Slot]:
    """The list of one scope: every stratum's slots, strata in definition order."""
    return [slot for stratum in scope.strata for slot in generate_stratum(seed, scope, stratum)]


def generate_all(seed: str, study: StudyDefinition) -> dict[str, list[Slot]]:
    return {scope.code: generate_list(seed, scope) for scope in study.scopes()}


def to_csv(slots: Iterable[Slot]) -> str:
    """Canonical CSV: header, rows sorted by (scope, stratum, sequence), LF line ends.

    Written as it is, not through `csv_cells`: this text is hashed for the commitment and read
    back by the import, and every cell is a study code (it starts with a letter or a digit, by
    the study definition's patterns) or a whole number >= 1, so no cell can start a formula.
    tests/domain/test_list_formats.py checks it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in sorted(slots):
        writer.writerow((s.scope, s.stratum, s.sequence, s.block, s.block_size, s.arm))
    return out.getvalue()


def commitment(slots: Iterable[Slot]) -> str:
    """SHA-256 (hex) of the canonical CSV: the value written to the audit log at creation."""
    return hashlib.sha256(to_csv(slots).encode("utf-8")).hexdigest()


def parse_csv(text: str, study: StudyDefinition) -> dict[str, list[Slot]]:
    """Validate an externally generated list; return slots per scope or raise naming every bad row.

    Rules: the canonical columns; known scope, stratum and arm; whole numbers; per stratum the
    sequence runs 1..n with no gap or repeat; block numbers run 1..m, each block contiguous, of a
    configured size, declaring its real size and balanced exactly to the ratio; the stratum holds
    at least the scope's cap. A file may hold some scopes only; each scope it holds is whole.
    """
    scopes = {s.code: s for s in study.scopes()}
    arms = {a.code for a in study.arms}
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    by_stratum: dict[tuple[str, str], list[tuple[int, Slot]]] = defaultdict(list)
    row_no = 1
    try:
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ListImportError([f"header: expected columns {','.join(CSV_COLUMNS)}"])
        for row_no, row in enumerate(reader, start=2):
            slot = _parse_row(row_no, row=row, scopes=scopes, arms=arms, problems=problems)
            if slot is not None:
                by_stratum[(slot.scope, slot.stratum)].append((row_no, slot))
    except csv.Error as exc:  # a bare carriage return in a cell, a cell past the csv limit
        raise ListImportError([f"row {row_no + 1}: not a readable CSV row ({exc})"]) from None
    for (scope_code, stratum), rows in sorted(by_stratum.items()):
        _check_stratum(scopes[scope_code], stratum=stratum, rows=rows, problems=problems)
    present = {scope_code for scope_code, _ in by_stratum}
    for scope_code in sorted(present):
        for stratum in scopes[scope_code].strata:
            if (scope_code, stratum) not in by_stratum:
                problems.append(f"scope {scope_code} stratum {stratum}: no rows")
    if not present and not problems:
        problems.append("the file holds no slots")
    if problems:
        raise ListImportError(problems)
    result: dict[str, list[Slot]] = defaultdict(list)
    for (scope_code, _), rows in sorted(by_stratum.items()):
        result[scope_code].extend(sorted(slot for _, slot in rows))
    return dict(result)


def _parse_row(
    row_no: int,
    *,
    row: dict[str, str],
    scopes: dict[str, ListScope],
    arms: set[str],
    problems: list[str],
) -> Slot | None:
    bad: list[str] = []
    scope = scopes.get(row.get("scope") or "")
    if scope is None:
        bad.append(f"unknown scope {row.get('scope')!r}")
    elif row.get("stratum") not in scope.strata:
        bad.append(f"unknown stratum {row.get('stratum')!r} for scope {scope.code}")
    if row.get("arm") not in arms:
        bad.append(f"unknown arm {row.get('arm')!r}")
    numbers: list[int] = []
    for column in ("sequence", "block", "block_size"):
        raw = (row.get(column) or "").strip()
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            bad.append(f"{column} {raw!r} is not a whole number >= 1")
        else:
            numbers.append(int(raw))
    if bad:
        problems.append(f"row {row_no}: " + ", ".join(bad))
        return None
    assert scope is not None
    return Slot(scope.code, row["stratum"], numbers[0], numbers[1], numbers[2], row["arm"])


def _check_stratum(
    scope: ListScope, *, stratum: str, rows: list[tuple[int, Slot]], problems: list[str]
) -> None:
    where = f"scope {scope.code} stratum {stratum}"
    rows = sorted(rows, key=lambda r: r[1].sequence)
    # Name every repeat and every gap (not only the first), then skip the block checks, which
    # need a clean sequence.
    rule = "(sequences must run 1, 2, 3, ... with no gap or repeat)"
    previous, bad_sequence = 0, False
    for row_no, slot in rows:
        if slot.sequence == previous:
            problems.append(f"row {row_no}: {where} sequence {slot.sequence} is repeated {rule}")
            bad_sequence = True
        elif slot.sequence != previous + 1:
            problems.append(
                f"row {row_no}: {where} sequence {slot.sequence} where {previous + 1} was "
                f"expected {rule}"
            )
            bad_sequence = True
        previous = slot.sequence
    if bad_sequence:
        return
    blocks: dict[int, list[tuple[int, Slot]]] = defaultdict(list)
    order: list[int] = []
    for row_no, slot in rows:
        if slot.block not in blocks:
            order.append(slot.block)
        elif order[-1] != slot.block:
            problems.append(f"row {row_no}: {where} block {slot.block} is not contiguous")
        blocks[slot.block].append((row_no, slot))
    if order != list(range(1, len(order) + 1)):
        problems.append(f"{where}: blocks must be numbered 1, 2, 3, ... in sequence order")
    for block_no, members in blocks.items():
        _check_block(scope, where=where, block_no=block_no, members=members, problems=problems)
    if len(rows) < scope.cap:
        problems.append(f"{where}: {len(rows)} slots, fewer than the cap {scope.cap}")


def _check_block(
    scope: ListScope,
    *,
    where: str,
    block_no: int,
    members: Sequence[tuple[int, Slot]],
    problems: list[str],
) -> None:
    first_row = members[0][0]
    declared = {slot.block_size for _, slot in members}
    size = len(members)
    if declared != {size}:
        problems.append(
            f"row {first_row}: {where} block {block_no} declares size {sorted(declared)} "
            f"but has {size} slots"
        )
    if size not in scope.allocation.block_sizes:
        problems.append(
            f"row {first_row}: {where} block {block_no} size {size} is not one of "
            f"{sorted(scope.allocation.block_sizes)}"
        )
        return
    wanted = Counter(block_arms(scope.allocation.ratio, size))
    got = Counter(slot.arm for _, slot in members)
    if got != wanted:
        problems.append(
            f"row {first_row}: {where} block {block_no} is not balanced: "
            f"{dict(sorted(got.items()))} where the ratio needs {dict(sorted(wanted.items()))}"
        )
