"""REDCap's allocation table, both ways (docs/randomization.md, "Other formats").

Modelled on REDCap's own code (Randomization.php): its download writes the header
`redcap_randomization_number,redcap_randomization_group,<strata fields>[,redcap_data_access_group]`
and the rows joined by commas with LF line ends; its upload drops blank rows and columns beyond
the expected ones, and leaves `redcap_randomization_number` empty in an open randomization.

Export: the strata in definition order, each in sequence order (the order REDCap uses a table
in), numbered with `list_blocks.opaque_numbers`, which tell nothing of blocks. Import: the arms of
each stratum in file order; the blocks come from the numbers only if they are the IRT's former
`{scope}-{stratum}-{sequence}-B{block}-{size}` numbers, else they are rebuilt from the arms.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from app.domain import list_blocks
from app.domain import randomization_list as rl
from app.domain.list_table import (
    arm_groups,
    factors,
    read_table,
    scope_of,
    stratum_of,
    validate,
    where,
)
from app.domain.study import ListScope, StrataFactor, StudyDefinition

NUMBER = "redcap_randomization_number"
GROUP = "redcap_randomization_group"
DAG = "redcap_data_access_group"
_BLOCK_NUMBER = re.compile(
    r"^(?P<scope>[A-Z0-9]+)-(?P<stratum>[0-9]+)-(?P<seq>[0-9]+)-B(?P<block>[0-9]+)-(?P<size>[0-9]+)$"
)
_OTHER_LAYOUTS = {
    **{c.lower(): "a Sealed Envelope column: use --format sealed-envelope" for c in (
        "Sequence", "Block", "Block size", "Treatment", "Randomisation code",
        "Block identifier", "Sequence within block",
    )},
    **{c: "a canonical list column: use --format canonical" for c in rl.CSV_COLUMNS},
}  # fmt: skip


def column(factor: StrataFactor) -> str:
    """A factor's stratification column: its code lowercased + `_group` (0 low, 1 high)."""
    return f"{factor.code.lower()}_group"


def header(study: StudyDefinition, scope: ListScope) -> tuple[str, ...]:
    return (NUMBER, GROUP, *(column(f) for f in factors(study, scope)))


def to_redcap(slots: Iterable[rl.Slot], study: StudyDefinition, scope_code: str) -> str:
    """The allocation table of one scope with opaque numbers. Like the canonical CSV it is
    written as it is: every cell is a code or a whole number, none can start a formula."""
    scope = scope_of(study, scope_code)
    group_of = {arm: group for group, arm in arm_groups(study).items()}
    position = {stratum: i for i, stratum in enumerate(scope.strata)}
    chosen = sorted(
        (s for s in slots if s.scope == scope.code), key=lambda s: (position[s.stratum], s.sequence)
    )
    numbers = list_blocks.opaque_numbers(chosen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header(study, scope))
    for s in chosen:
        levels = s.stratum.split("/") if factors(study, scope) else []
        codes = [
            "0" if level == f.levels()[0] else "1"
            for f, level in zip(factors(study, scope), levels, strict=True)
        ]
        writer.writerow((numbers[(s.stratum, s.sequence)], group_of[s.arm], *codes))
    return out.getvalue()


def parse_redcap(
    text: str,
    study: StudyDefinition,
    scope_code: str,
    *,
    aliases: Mapping[str, str] | None = None,
    dag_sites: Mapping[str, str] | None = None,
    sites: Collection[str] = (),
) -> list[rl.Slot]:
    """A REDCap allocation table of one scope (a download, a filled-in template, the IRT's own
    export), validated like the canonical CSV. `aliases` maps the project's own strata field
    names to ours; `dag_sites` maps REDCap Data Access Group ids to site codes (a unique group
    name equal to a site code, case aside, needs no mapping)."""
    scope = scope_of(study, scope_code)
    strata_columns = {column(f): f for f in factors(study, scope)}
    other_scope = {column(f) for f in study.phase_ii.strata_factors} - set(strata_columns)
    table = read_table(
        text,
        required=(GROUP, *strata_columns),
        optional=(NUMBER, DAG),
        aliases=aliases,
        mapping_hint=(
            "a project's own strata field is mapped with --column THEIRS=OURS ("
            + ", ".join(strata_columns)
            + ")"
            if strata_columns
            else ""
        ),
        hint=lambda h: (
            f"a phase II stratification column: is this the P2 table? (not {scope.code})"
            if h in other_scope
            else _OTHER_LAYOUTS.get(h.lower(), _OTHER_LAYOUTS.get(h))
        ),
    )
    spelled = {name: table.header[index] for name, index in table.columns.items()}
    groups = arm_groups(study)
    level_codes = {
        f.code: dict(zip(("0", "1"), f.levels(), strict=True)) for f in factors(study, scope)
    }
    known_sites = {s.upper(): s for s in sites}
    dag_map = {k.strip(): v for k, v in (dag_sites or {}).items()}
    problems: list[str] = []
    good: list[tuple[int, str, str, str]] = []  # (row, stratum, arm, number)
    sites_seen: dict[str, int] = {}
    for row_no, cells in table.rows:
        bad: list[str] = []
        group = table.cell(cells, GROUP)
        arm = groups.get(group)
        if arm is None:
            known = ", ".join(f"{g} = {a}" for g, a in groups.items())
            bad.append(f"{where(row_no, spelled[GROUP])}: {group!r} is not a group ({known})")
        stratum = stratum_of(
            scope,
            values=[(f, spelled[c], table.cell(cells, c)) for c, f in strata_columns.items()],
            level_of=lambda f, v: level_codes[f.code].get(v),
            row=row_no,
            bad=bad,
        )
        if table.has(DAG) and (dag := table.cell(cells, DAG)):
            site = dag_map.get(dag) or known_sites.get(dag.upper())
            if site is None:
                bad.append(
                    f"{where(row_no, spelled[DAG])}: {dag!r} is not a site; map REDCap's "
                    f"group ids to sites (--dag {dag}=SITE)"
                )
            else:
                sites_seen.setdefault(site, row_no)
        if bad:
            problems += bad
        else:
            assert stratum is not None and arm is not None
            good.append((row_no, stratum, arm, table.cell(cells, NUMBER)))
    if len(sites_seen) > 1:
        problems.append(
            f"column {spelled[DAG]!r}: rows of {len(sites_seen)} Data Access Groups "
            f"({', '.join(sorted(sites_seen))}): this table is grouped by site, and the lists of "
            f"{study.code} are not (one list per stratum for every site); export the table of a "
            "REDCap randomization that is not grouped by Data Access Group"
        )
    problems += _duplicate_numbers(good, spelled.get(NUMBER, NUMBER))
    if problems:
        raise rl.ListImportError(problems)
    legacy = bool(good) and all(_BLOCK_NUMBER.match(number) for *_, number in good)
    rows = (
        _from_block_numbers(good, scope, spelled[NUMBER], problems)
        if legacy
        else _rebuilt(good, scope, problems)
    )
    return validate(rows, problems=problems, study=study, scope=scope)


def _duplicate_numbers(good: list[tuple[int, str, str, str]], name: str) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for row_no, _, _, number in good:
        if number and number in first:
            problems.append(
                f"{where(row_no, name)}: {number!r} is also the number of row {first[number]}"
            )
        first.setdefault(number, row_no)
    return problems


def _from_block_numbers(
    good: list[tuple[int, str, str, str]], scope: ListScope, name: str, problems: list[str]
) -> list[tuple[int, tuple[str, str, int, int, int, str]]]:
    """Rows numbered `{scope}-{stratum}-{sequence}-B{block}-{size}` (the IRT's former export):
    the blocks are read from the numbers, so the list comes back exactly."""
    rows = []
    for row_no, stratum, arm, number in good:
        match = _BLOCK_NUMBER.match(number)
        assert match is not None
        if match["scope"] != scope.code:
            problems.append(f"{where(row_no, name)}: {number!r} is not of scope {scope.code}")
        elif int(match["stratum"]) != scope.strata.index(stratum) + 1:
            problems.append(
                f"{where(row_no, name)}: {number!r} names stratum {match['stratum']} but the "
                f"strata columns give {scope.strata.index(stratum) + 1} ({stratum})"
            )
        else:
            cells = (int(match["seq"]), int(match["block"]), int(match["size"]))
            rows.append((row_no, (scope.code, stratum, *cells, arm)))
    return rows


def _rebuilt(
    good: list[tuple[int, str, str, str]], scope: ListScope, problems: list[str]
) -> list[tuple[int, tuple[str, str, int, int, int, str]]]:
    """Sequence = order within the stratum in the file; blocks rebuilt from the arms."""
    by_stratum: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row_no, stratum, arm, _ in good:
        by_stratum[stratum].append((row_no, arm))
    rows = []
    for stratum, members in by_stratum.items():
        arms = [arm for _, arm in members]
        try:
            blocks = list_blocks.rebuild_blocks(arms, scope)
        except list_blocks.NoBlocks as exc:
            sizes = " or ".join(str(s) for s in sorted(scope.allocation.block_sizes))
            problems.append(
                f"row {members[exc.position][0]}: stratum {stratum}: from here the arms do "
                f"not split into blocks of {sizes} "
                f"balanced to the ratio {_ratio(scope)} (slot {exc.position + 1} of "
                f"{len(members)} in this stratum)"
            )
            continue
        for sequence, ((row_no, arm), (block, size)) in enumerate(
            zip(members, blocks, strict=True), 1
        ):
            rows.append((row_no, (scope.code, stratum, sequence, block, size, arm)))
    return sorted(rows)


def _ratio(scope: ListScope) -> str:
    return ":".join(f"{n} {arm}" for arm, n in sorted(scope.allocation.ratio.items()))
