"""Randomization lists in other tools' layouts: REDCap's allocation table, Sealed Envelope's export.

Pure code. `to_redcap` turns the stored slots of one scope into REDCap's layout; `parse_redcap`
and `parse_sealed_envelope` turn a file of one scope into canonical rows and validate them with
`randomization_list.parse_csv`, so the same rules apply, every bad row is named (row numbers are
the file's own, its header being row 1) and nothing is returned on any error. The mappings are
documented in docs/randomization.md, "Other formats".
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable

from app.domain import randomization_list as rl
from app.domain.study import NO_STRATUM, ListScope, StrataFactor, StudyDefinition

FORMATS = ("canonical", "redcap", "sealed-envelope")
REDCAP_NUMBER = "redcap_randomization_number"
REDCAP_GROUP = "redcap_randomization_group"
SE_COLUMNS = ("Sequence", "Block", "Block size", "Treatment")
_NUMBER = re.compile(
    r"^(?P<scope>[A-Z0-9]+)-(?P<stratum>[0-9]+)-(?P<seq>[0-9]+)-B(?P<block>[0-9]+)-(?P<size>[0-9]+)$"
)


def arm_groups(study: StudyDefinition) -> dict[str, str]:
    """REDCap group value -> arm code: "1", "2", ... over the arm codes in alphabetical order."""
    return {str(i): code for i, code in enumerate(sorted(a.code for a in study.arms), start=1)}


def factors(study: StudyDefinition, scope: ListScope) -> tuple[StrataFactor, ...]:
    """The scope's stratification factors (none for a phase Ib cohort)."""
    return () if scope.strata == (NO_STRATUM,) else study.phase_ii.strata_factors


def redcap_column(factor: StrataFactor) -> str:
    """REDCap stratification column of a factor: its code lowercased + `_group` (0 low, 1 high)."""
    return f"{factor.code.lower()}_group"


def redcap_header(study: StudyDefinition, scope: ListScope) -> tuple[str, ...]:
    return (REDCAP_NUMBER, REDCAP_GROUP, *(redcap_column(f) for f in factors(study, scope)))


def sealed_envelope_header(study: StudyDefinition, scope: ListScope) -> tuple[str, ...]:
    return (*SE_COLUMNS, *(f.code for f in factors(study, scope)))


def _scope(study: StudyDefinition, code: str) -> ListScope:
    try:
        return study.scope(code)
    except KeyError:
        raise rl.ListImportError([f"unknown scope {code!r}"]) from None


def to_redcap(slots: Iterable[rl.Slot], study: StudyDefinition, scope_code: str) -> str:
    """REDCap allocation table of one scope: strata in definition order, each by sequence.

    The randomization number `{scope}-{stratum number}-{sequence}-B{block}-{block size}` keeps
    the blocks, so that the table imports back to the same list (the same commitment). Like the
    canonical CSV (`randomization_list.to_csv`) it is written as it is: its cells are codes and
    whole numbers that cannot start a formula.
    """
    scope = _scope(study, scope_code)
    group_of = {arm: group for group, arm in arm_groups(study).items()}
    stratum_no = {stratum: i for i, stratum in enumerate(scope.strata, start=1)}
    chosen = sorted(
        (s for s in slots if s.scope == scope.code),
        key=lambda s: (stratum_no[s.stratum], s.sequence),
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(redcap_header(study, scope))
    for s in chosen:
        levels = s.stratum.split("/") if factors(study, scope) else []
        codes = [
            "0" if level == f.levels()[0] else "1"
            for f, level in zip(factors(study, scope), levels, strict=True)
        ]
        number = f"{s.scope}-{stratum_no[s.stratum]}-{s.sequence:04d}-B{s.block}-{s.block_size}"
        writer.writerow((number, group_of[s.arm], *codes))
    return out.getvalue()


def parse_redcap(text: str, study: StudyDefinition, scope_code: str) -> list[rl.Slot]:
    """A REDCap allocation table of one scope, validated like the canonical CSV."""
    scope = _scope(study, scope_code)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [c.strip() for c in reader.fieldnames or ()]
    required = redcap_header(study, scope)[1:]
    _check_header(header, required, (REDCAP_NUMBER,))
    sizes = sorted(scope.allocation.block_sizes)
    numbered = REDCAP_NUMBER in header
    if not numbered and len(sizes) > 1:
        raise rl.ListImportError(
            [
                f"header: without {REDCAP_NUMBER} the blocks of scope {scope.code} (sizes "
                f"{sizes}) cannot be rebuilt"
            ]
        )
    groups = arm_groups(study)
    counts: dict[str, int] = defaultdict(int)
    rows: list[tuple[str, ...] | None] = []
    problems: list[str] = []
    for row_no, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        bad: list[str] = []
        arm = groups.get(row.get(REDCAP_GROUP, ""))
        if arm is None:
            known = ", ".join(f"{g} = {a}" for g, a in groups.items())
            bad.append(f"unknown {REDCAP_GROUP} {row.get(REDCAP_GROUP)!r} ({known})")
        stratum = _stratum(
            scope,
            values=[(f, row.get(redcap_column(f), "")) for f in factors(study, scope)],
            level_of=lambda f, v: {"0": f.levels()[0], "1": f.levels()[1]}.get(v),
            bad=bad,
        )
        numbers: tuple[str, str, str] | None = None
        if numbered:
            match = _NUMBER.match(row.get(REDCAP_NUMBER, ""))
            if match is None:
                bad.append(
                    f"{REDCAP_NUMBER} {row.get(REDCAP_NUMBER)!r} is not "
                    "SCOPE-STRATUM-SEQUENCE-BBLOCK-SIZE"
                )
            elif match["scope"] != scope.code:
                bad.append(
                    f"{REDCAP_NUMBER} {row.get(REDCAP_NUMBER)!r} is not of scope {scope.code}"
                )
            elif stratum is not None and int(match["stratum"]) != scope.strata.index(stratum) + 1:
                bad.append(
                    f"{REDCAP_NUMBER} {row.get(REDCAP_NUMBER)!r} names stratum {match['stratum']} "
                    f"but the strata columns give {scope.strata.index(stratum) + 1} ({stratum})"
                )
            else:
                numbers = (str(int(match["seq"])), match["block"], match["size"])
        if bad:
            problems.append(f"row {row_no}: " + ", ".join(bad))
            rows.append(None)
            continue
        assert stratum is not None and arm is not None
        if numbers is None:
            counts[stratum] += 1
            sequence = counts[stratum]
            numbers = (str(sequence), str((sequence - 1) // sizes[0] + 1), str(sizes[0]))
        rows.append((scope.code, stratum, *numbers, arm))
    return _validate(rows, problems=problems, study=study, scope=scope)


def parse_sealed_envelope(text: str, study: StudyDefinition, scope_code: str) -> list[rl.Slot]:
    """A Sealed Envelope list of one scope, validated like the canonical CSV."""
    scope = _scope(study, scope_code)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    by_lower = {c.strip().lower(): c.strip() for c in reader.fieldnames or ()}
    wanted = sealed_envelope_header(study, scope)
    _check_header(
        [c.strip() for c in reader.fieldnames or ()],
        tuple(by_lower.get(w.lower(), w) for w in wanted),
        (),
    )
    arm_of = {}
    for a in study.arms:
        arm_of[a.code.lower()] = a.code
        arm_of[a.name.lower()] = a.code
    rows: list[tuple[str, ...] | None] = []
    problems: list[str] = []
    for row_no, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        bad: list[str] = []
        arm = arm_of.get(row.get("treatment", "").lower())
        if arm is None:
            known = ", ".join(f"{a.code} or {a.name}" for a in study.arms)
            bad.append(f"unknown Treatment {row.get('treatment')!r} ({known})")
        stratum = _stratum(
            scope,
            values=[(f, row.get(f.code.lower(), "")) for f in factors(study, scope)],
            level_of=_se_level,
            bad=bad,
        )
        if bad:
            problems.append(f"row {row_no}: " + ", ".join(bad))
            rows.append(None)
            continue
        assert stratum is not None and arm is not None
        numbers = (row.get("sequence", ""), row.get("block", ""), row.get("block size", ""))
        rows.append((scope.code, stratum, *numbers, arm))
    return _validate(rows, problems=problems, study=study, scope=scope)


def _se_level(factor: StrataFactor, value: str) -> str | None:
    """`<10`, `>=10` or the whole level (`SLEDAI<10`); spaces ignored."""
    compact = value.replace(" ", "")
    for level in factor.levels():
        if compact in (level, level[len(factor.code) :]):
            return level
    return None


def _stratum(
    scope: ListScope,
    *,
    values: list[tuple[StrataFactor, str]],
    level_of: Callable[[StrataFactor, str], str | None],
    bad: list[str],
) -> str | None:
    if not values:
        return NO_STRATUM
    levels = []
    for factor, value in values:
        level = level_of(factor, value)
        if level is None:
            bad.append(f"{factor.code} value {value!r} is not a level of {factor.code}")
        levels.append(level)
    if None in levels:
        return None
    return "/".join(str(level) for level in levels)


def _check_header(header: list[str], required: Iterable[str], optional: Iterable[str]) -> None:
    problems = [f"header: column {c!r} is missing" for c in required if c not in header]
    allowed = {*required, *optional}
    problems += [f"header: unknown column {c!r}" for c in header if c not in allowed]
    if problems:
        raise rl.ListImportError(problems)


def _validate(
    rows: list[tuple[str, ...] | None],
    *,
    problems: list[str],
    study: StudyDefinition,
    scope: ListScope,
) -> list[rl.Slot]:
    """Canonical CSV in file order (row n stays row n) through `parse_csv`; bad rows stay bad."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rl.CSV_COLUMNS)
    for row in rows:
        writer.writerow(row if row is not None else ("", "", "", "", "", ""))
    bad_rows = {p.split(":", 1)[0] for p in problems}
    try:
        result = rl.parse_csv(out.getvalue(), study)
    except rl.ListImportError as exc:
        problems = problems + [p for p in exc.problems if p.split(":", 1)[0] not in bad_rows]
        raise rl.ListImportError(problems) from None
    if problems:
        raise rl.ListImportError(problems)
    return result.get(scope.code, [])


def parse(
    text: str, *, study: StudyDefinition, file_format: str, scope: str
) -> dict[str, list[rl.Slot]]:
    """Any supported format to slots per scope (the canonical CSV may hold several scopes)."""
    if file_format == "canonical":
        return rl.parse_csv(text, study)
    if file_format == "redcap":
        return {scope: parse_redcap(text, study, scope)}
    if file_format == "sealed-envelope":
        return {scope: parse_sealed_envelope(text, study, scope)}
    raise rl.ListImportError([f"unknown format {file_format!r}; known: {', '.join(FORMATS)}"])
