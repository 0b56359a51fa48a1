"""Randomization lists in other tools' layouts: REDCap's allocation table, Sealed Envelope's list.

Pure code; one entry point each way over the layouts of `redcap_format` and
`sealed_envelope_format`. A file in another layout holds one scope. Importing turns it into
canonical rows and validates them with `randomization_list.parse_csv`, so the same rules apply;
every problem names the file's row (its header being row 1) and column, and nothing is returned
on any problem. The mappings are documented in docs/randomization.md, "Other formats".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from app.domain import randomization_list as rl
from app.domain.list_table import arm_groups, factors
from app.domain.redcap_format import parse_redcap, to_redcap
from app.domain.sealed_envelope_format import parse_sealed_envelope, to_sealed_envelope
from app.domain.study import StudyDefinition

FORMATS = ("canonical", "redcap", "sealed-envelope")
"""Every format reads and writes; the canonical CSV may hold every scope, the others one."""

__all__ = [
    "FORMATS",
    "arm_groups",
    "export",
    "factors",
    "parse",
    "parse_redcap",
    "parse_sealed_envelope",
    "to_redcap",
    "to_sealed_envelope",
]


def parse(
    text: str,
    *,
    study: StudyDefinition,
    file_format: str,
    scope: str,
    aliases: Mapping[str, str] | None = None,
    dag_sites: Mapping[str, str] | None = None,
    sites: Collection[str] = (),
) -> dict[str, list[rl.Slot]]:
    """Any supported format to slots per scope. `aliases` (a file's column -> ours) applies to
    REDCap and Sealed Envelope files, `dag_sites` and `sites` to REDCap's Data Access Groups."""
    if file_format == "canonical":
        return rl.parse_csv(text, study)
    if file_format == "redcap":
        slots = parse_redcap(text, study, scope, aliases=aliases, dag_sites=dag_sites, sites=sites)
        return {scope: slots}
    if file_format == "sealed-envelope":
        return {scope: parse_sealed_envelope(text, study, scope, aliases=aliases)}
    raise rl.ListImportError([f"unknown format {file_format!r}; known: {', '.join(FORMATS)}"])


def export(
    slots: Iterable[rl.Slot], *, study: StudyDefinition, file_format: str, scope: str
) -> str:
    """One scope in REDCap's or Sealed Envelope's layout (the canonical CSV is `rl.to_csv`)."""
    if file_format == "redcap":
        return to_redcap(slots, study, scope)
    if file_format == "sealed-envelope":
        return to_sealed_envelope(slots, study, scope)
    raise ValueError(f"unknown format {file_format!r}")
