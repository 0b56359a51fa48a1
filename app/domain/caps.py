"""The caps of the randomization scopes (phase Ib cohorts and phase II) as the sponsor changes
them: unused places of closed cohorts moved to phase II, or a cap set anew.

The rules keep three things true whatever is asked: no cap below what is already randomized in
its scope, no closed cohort given places it can no longer use, and the caps never add up to
more than the study's target (which only a new version of the study definition raises)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CLOSED = "closed"


class CapRuleError(ValueError):
    """A cap change the rules refuse; `code` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ScopeCap:
    """One scope as the rules see it: its cap, how many are randomized in it, its status
    (`planned`, `open` or `closed`; phase II is `open` once its dose is recorded)."""

    scope: str
    label: str
    cap: int
    randomized: int
    status: str

    @property
    def unused(self) -> int:
        return max(self.cap - self.randomized, 0)


def plan_caps(
    current: Sequence[ScopeCap], requested: Mapping[str, int], *, target: int
) -> dict[str, int]:
    """Every scope's cap after the change (`requested` names only the scopes that change)."""
    by_scope = {s.scope: s for s in current}
    unknown = sorted(set(requested) - set(by_scope))
    if unknown:
        raise CapRuleError("not_found", f"There is no randomization scope {', '.join(unknown)}.")
    caps = {s.scope: s.cap for s in current}
    for scope, cap in requested.items():
        state = by_scope[scope]
        if cap < 0:
            raise CapRuleError("invalid_cap", f"The cap of {state.label} cannot be negative.")
        if cap < state.randomized:
            raise CapRuleError(
                "cap_below_randomized",
                f"{state.label} has {state.randomized} subjects randomized: its cap cannot be "
                f"below {state.randomized} (asked {cap}).",
            )
        if cap > state.cap and state.status == CLOSED:
            raise CapRuleError(
                "cohort_closed",
                f"{state.label} is closed: no subject can be randomized there any more, so its "
                "cap cannot be raised.",
            )
        caps[scope] = cap
    if caps == {s.scope: s.cap for s in current}:
        raise CapRuleError("no_change", "These are the caps already in force: nothing to change.")
    total = sum(caps.values())
    if total > target:
        raise CapRuleError(
            "over_target",
            f"The caps would add up to {total}, above the study's target of {target}. Take the "
            "places from another scope, or load a new version of the study definition that "
            "raises the target.",
        )
    return caps


def move_unused(
    current: Sequence[ScopeCap], *, source: str, to: str, places: int | None = None
) -> dict[str, int]:
    """The caps of `source` and `to` after moving `places` (default: all) unused places of the
    closed cohort `source` to `to`."""
    by_scope = {s.scope: s for s in current}
    for scope in (source, to):
        if scope not in by_scope:
            raise CapRuleError("not_found", f"There is no randomization scope {scope}.")
    state = by_scope[source]
    if state.status != CLOSED:
        raise CapRuleError(
            "cohort_not_closed",
            f"{state.label} is {state.status}: only a closed cohort's unused places can move.",
        )
    count = state.unused if places is None else places
    if count <= 0 or count > state.unused:
        raise CapRuleError(
            "not_enough_unused",
            f"{state.label} has {state.unused} unused places; {count} cannot be moved.",
        )
    return {source: state.cap - count, to: by_scope[to].cap + count}


def carry_caps(
    effective: Mapping[str, int], *, old: Mapping[str, int], new: Mapping[str, int]
) -> dict[str, int]:
    """The caps in force after a new version of the study definition: what the sponsor had set,
    changed by exactly what the new version changes (moved places are kept)."""
    return {scope: cap + new.get(scope, 0) - old.get(scope, 0) for scope, cap in effective.items()}


def check_caps_hold(current: Sequence[ScopeCap], caps: Mapping[str, int], *, target: int) -> None:
    """Refuse caps below what is randomized, or adding up to more than `target`."""
    for state in current:
        if caps[state.scope] < state.randomized:
            raise CapRuleError(
                "cap_below_randomized",
                f"{state.label} would get a cap of {caps[state.scope]}, below the "
                f"{state.randomized} subjects already randomized there.",
            )
    total = sum(caps.values())
    if total > target:
        raise CapRuleError(
            "over_target", f"The caps would add up to {total}, above the target of {target}."
        )
