"""The subject lifecycle: the states a subject passes through and the only moves between them.

registered -> randomized by randomization (app/services/randomization.py); every other move is
one of four acts recorded by site staff, or the correction that undoes the latest of them:

- screen failure:  registered -> screen_failed
- discontinuation: randomized -> discontinued (treatment stops, follow-up goes on: no more kits)
- withdrawal:      registered | randomized | discontinued -> withdrawn (leaves the study)
- completion:      randomized -> completed, an explicit act, allowed once the last dosing visit
                   of the schedule has been dispensed (the IRT cannot know when the follow-up
                   after the last dose ends, so it never completes a subject by itself)

Only a `randomized` subject is on treatment: it alone gets kits and counts as due in the
supply forecast and the kits due. Pure rules: the service layer locks, stores and audits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from app.domain.date_display import format_date
from app.domain.dates import latest_today
from app.domain.errors import Conflict, validation_error


class SubjectStatus(StrEnum):
    REGISTERED = "registered"
    SCREEN_FAILED = "screen_failed"
    RANDOMIZED = "randomized"
    DISCONTINUED = "discontinued"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


class Act(StrEnum):
    SCREEN_FAIL = "screen_fail"
    DISCONTINUE = "discontinue"
    WITHDRAW = "withdraw"
    COMPLETE = "complete"


STATUS_LABELS: Mapping[str, str] = {
    SubjectStatus.REGISTERED: "Registered",
    SubjectStatus.SCREEN_FAILED: "Screen failed",
    SubjectStatus.RANDOMIZED: "Randomized, dosing",
    SubjectStatus.DISCONTINUED: "Stopped dosing (in follow-up)",
    SubjectStatus.WITHDRAWN: "Withdrawn from the study",
    SubjectStatus.COMPLETED: "Completed",
}

ACT_LABELS: Mapping[str, str] = {
    Act.SCREEN_FAIL: "Screen failure",
    Act.DISCONTINUE: "Dosing discontinuation",
    Act.WITHDRAW: "Withdrawal from the study",
    Act.COMPLETE: "Completion",
}

MOVES: Mapping[Act, tuple[frozenset[SubjectStatus], SubjectStatus]] = {
    Act.SCREEN_FAIL: (frozenset({SubjectStatus.REGISTERED}), SubjectStatus.SCREEN_FAILED),
    Act.DISCONTINUE: (frozenset({SubjectStatus.RANDOMIZED}), SubjectStatus.DISCONTINUED),
    Act.WITHDRAW: (
        frozenset({SubjectStatus.REGISTERED, SubjectStatus.RANDOMIZED, SubjectStatus.DISCONTINUED}),
        SubjectStatus.WITHDRAWN,
    ),
    Act.COMPLETE: (frozenset({SubjectStatus.RANDOMIZED}), SubjectStatus.COMPLETED),
}
"""Each act: the states it may start from, and the state it leads to."""

ON_TREATMENT = frozenset({SubjectStatus.RANDOMIZED})
"""The states that get kits and count as due in the forecast, the resupply and the kits due."""

RANDOMIZABLE = frozenset({SubjectStatus.REGISTERED})
"""The states from which a subject may be randomized."""

REASON_CATEGORIES: Mapping[Act, tuple[str, ...]] = {
    Act.SCREEN_FAIL: (
        "eligibility_not_met",
        "withdrawal_by_subject",
        "physician_decision",
        "other",
    ),
    Act.DISCONTINUE: (
        "adverse_event",
        "lack_of_efficacy",
        "pregnancy",
        "protocol_deviation",
        "physician_decision",
        "withdrawal_by_subject",
        "other",
    ),
    Act.WITHDRAW: (
        "withdrawal_by_subject",
        "lost_to_follow_up",
        "death",
        "physician_decision",
        "sponsor_decision",
        "other",
    ),
    Act.COMPLETE: ("completed",),
}
"""The coded reasons each act takes (CDISC disposition terms, lower case), beside free text."""

EARLIEST_UTC_OFFSET = timedelta(hours=-12)
"""The calendar runs furthest behind at UTC-12: the earliest local date of a UTC moment (the
latest is `latest_today`, UTC+14)."""


def label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def on_treatment(status: str) -> bool:
    return status in ON_TREATMENT


def allowed_acts(status: str) -> list[Act]:
    """The acts possible from `status`, in a fixed order."""
    return [act for act, (sources, _) in MOVES.items() if status in sources]


def check_move(status: str, act: Act) -> SubjectStatus:
    """The state `act` leads to from `status`, or a refusal naming the state and what is
    possible from it."""
    sources, target = MOVES[act]
    if status in sources:
        return target
    possible = ", ".join(ACT_LABELS[a].lower() for a in allowed_acts(status)) or "none"
    raise Conflict(
        "status_change_not_allowed",
        f"{ACT_LABELS[act]} is not possible: the subject is {label(status).lower()}. "
        f"Possible from this state: {possible}.",
        subject_status=status,
    )


def check_reason_category(act: Act, category: str) -> str:
    allowed = REASON_CATEGORIES[act]
    if category not in allowed:
        raise validation_error(
            "reason_category",
            f"Choose one of: {', '.join(c.replace('_', ' ') for c in allowed)}.",
        )
    return category


@dataclass(frozen=True)
class Facts:
    """What the rules need to know of the subject: when it was registered (UTC), the date of
    its last dosing visit (day 1 is dispensed at randomization), and whether that was the
    schedule's last one."""

    registered_at: datetime
    last_dose_on: date | None = None
    last_dosing_visit_done: bool = False


def check_effective_date(act: Act, effective: date, *, facts: Facts, now: datetime) -> date:
    """The day the change took effect: not in the future anywhere on Earth, not before the
    subject was registered, and for a subject with dosing visits not before the last one (a
    kit handed out after the treatment stopped would contradict it)."""
    latest = latest_today(now)
    if effective > latest:
        raise validation_error("effective_date", "The effective date must not be in the future.")
    earliest = (facts.registered_at + EARLIEST_UTC_OFFSET).date()
    since = "the subject's registration"
    if facts.last_dose_on is not None and facts.last_dose_on > earliest:
        earliest, since = facts.last_dose_on, "the last dosing visit"
    if effective < earliest:
        raise validation_error(
            "effective_date",
            f"The effective date must not be before {since} ({format_date(earliest)}).",
        )
    if act is Act.COMPLETE and not facts.last_dosing_visit_done:
        raise Conflict(
            "treatment_not_finished",
            "Completion is possible once the last dosing visit of the schedule has been "
            "dispensed; to stop dosing earlier, record a dosing discontinuation.",
        )
    return effective


# --- the history and its corrections ---------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One row of a subject's status history: an act (`corrects` None) or the correction that
    undoes the act `corrects`."""

    change_id: int
    from_status: str
    to_status: str
    corrects: int | None = None


def undoable(history: Iterable[Change]) -> Change | None:
    """The act a correction would undo now: the latest act not yet undone. Corrections undo
    acts newest first, so the acts still standing form a stack."""
    standing: list[Change] = []
    for change in history:
        if change.corrects is None:
            standing.append(change)
        elif standing and standing[-1].change_id == change.corrects:
            standing.pop()
        else:
            raise ValueError(f"change {change.change_id} corrects an act that is not the latest")
    return standing[-1] if standing else None


def nothing_to_undo() -> Conflict:
    return Conflict("nothing_to_undo", "This subject has no status change to undo.")


def correction_of(history: Iterable[Change], *, status: str, change_id: int) -> Change:
    """The correction that undoes `change_id` (which must be the latest act standing, and the
    subject still in the state it led to), as a change without an id yet (0)."""
    latest = undoable(history)
    if latest is None:
        raise nothing_to_undo()
    if latest.change_id != change_id:
        raise Conflict(
            "not_latest_change",
            f"Only the latest status change still standing can be undone "
            f"(change {latest.change_id}, to {label(latest.to_status).lower()}).",
        )
    if latest.to_status != status:  # pragma: no cover - the stored status follows the history
        raise Conflict("status_out_of_step", "The subject's status does not match its history.")
    return Change(0, from_status=status, to_status=latest.from_status, corrects=latest.change_id)
