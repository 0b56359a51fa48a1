"""Versions of the study definition: what a protocol amendment may change, from when it is in
effect, and which version an act dated on a given day follows.

A version never changes the past: it takes effect on or after the date of the latest act
(randomization or dispensing) and of the version it follows, and everything that shaped the
lists already generated, the kits already labelled or the visits already scheduled stays as
it was (arms, ratios, blocks, strata, cohorts and their doses, the drug, the schedule)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from app.domain.date_display import format_date
from app.domain.study import StudyDefinition

AMENDABLE = frozenset(
    {"name", "registry_id", "total_cap", "eligibility", "weight", "supply", "demo_depots"}
    | {"demo_sites"}
)
"""Top-level fields an amendment may change; caps inside phase_ib / phase_ii too (below)."""


class VersionRuleError(ValueError):
    """A version the rules refuse; `code` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _without_caps(stage: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in stage.items() if k != "cap"}
    if "cohorts" in kept:
        kept["cohorts"] = [{k: v for k, v in c.items() if k != "cap"} for c in kept["cohorts"]]
    return kept


def changed_fields(old: StudyDefinition, new: StudyDefinition) -> list[str]:
    """The top-level fields the new version changes, in definition order."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return [name for name in after if before.get(name) != after.get(name)]


def check_amendment(old: StudyDefinition, new: StudyDefinition) -> list[str]:
    """The fields the new version changes; refused if it changes one an amendment may not."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    frozen = []
    for name in after:
        if name in AMENDABLE:
            continue
        if name in ("phase_ib", "phase_ii"):
            if _without_caps(before[name]) != _without_caps(after[name]):
                frozen.append(name)
        elif before.get(name) != after.get(name):
            frozen.append(name)
    if frozen:
        raise VersionRuleError(
            "amendment_not_allowed",
            "A new version may change caps, eligibility, the accepted weights, supply settings "
            f"and names only; this one also changes {', '.join(frozen)}, which the lists, kits "
            "or visits already made depend on.",
        )
    changed = changed_fields(old, new)
    if not changed:
        raise VersionRuleError(
            "no_change", "This definition is the same as the current version: nothing to load."
        )
    return changed


def check_effective_date(
    effective: date, *, latest_act: date | None, previous_effective: date
) -> None:
    """Refuse a version that would take effect before an act already done, or before the
    version it follows (on the same day, the newer version applies)."""
    if latest_act is not None and effective < latest_act:
        raise VersionRuleError(
            "changes_the_past",
            f"A new version cannot take effect on {format_date(effective)}: subjects were "
            f"already randomized or dosed on {format_date(latest_act)} under the version in "
            "force. Choose that date or a later one.",
        )
    if effective < previous_effective:
        raise VersionRuleError(
            "changes_the_past",
            f"A new version cannot take effect before the version it follows "
            f"({format_date(previous_effective)}); {format_date(effective)} is.",
        )


def version_on(versions: Sequence[tuple[int, date]], day: date) -> int:
    """The version in effect on `day`: the newest one in effect by then; the first version is
    in effect before any other (an act dated before the study was loaded follows it)."""
    ordered = sorted(versions)
    if not ordered:
        raise ValueError("no version is loaded")
    chosen = ordered[0][0]
    for number, effective in ordered:
        if effective <= day:
            chosen = number
    return chosen


def caps_of(study: StudyDefinition) -> dict[str, int]:
    """Every scope's cap as the definition sets it."""
    return {scope.code: scope.cap for scope in study.scopes()}
