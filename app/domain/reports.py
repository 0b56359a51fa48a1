"""Report aggregation (pure): enrolment against caps and the blinded expiry outlook.

Nothing here sees an arm or a kit content: the inputs are already blinded facts (where a subject
is enrolled, which status and expiry date a kit has), so no report can be split by arm."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from app.domain.lifecycle import SubjectStatus
from app.domain.study import NO_STRATUM, PHASE_IB, PHASE_II, PHASE_II_SCOPE, StudyDefinition

# --- enrolment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    """One registered subject: its site and, once randomized, its list scope and stratum; its
    lifecycle status (app/domain/lifecycle.py)."""

    site_id: str
    scope: str | None = None
    stratum: str | None = None
    status: str = SubjectStatus.REGISTERED
    count: int = 1
    """Subjects alike in all of the above, counted once (the service counts them in SQL)."""


@dataclass(frozen=True)
class StageLine:
    stage: str
    scope: str
    status: str
    cap: int
    randomized: int

    @property
    def remaining(self) -> int:
        return max(self.cap - self.randomized, 0)


@dataclass(frozen=True)
class StratumLine:
    stage: str
    scope: str
    stratum: str
    randomized: int


@dataclass(frozen=True)
class SiteLine:
    site_id: str
    registered: int
    randomized: int
    by_scope: dict[str, int]
    by_status: dict[str, int] = field(default_factory=dict)
    """Subjects per lifecycle status, every status named (zeros too)."""


@dataclass(frozen=True)
class EnrolmentReport:
    target: int
    registered: int
    randomized: int
    stages: list[StageLine]
    strata: list[StratumLine]
    sites: list[SiteLine]
    by_status: dict[str, int] = field(default_factory=dict)
    """The reader's subjects per lifecycle status (`randomized` there: still on treatment;
    the `randomized` count above includes every subject ever randomized)."""


def enrolment(
    study: StudyDefinition,
    *,
    subjects: Iterable[Enrolled],
    statuses: Mapping[str, str],
    site_ids: Sequence[str],
    study_wide: Mapping[str, int],
) -> EnrolmentReport:
    """Study-wide progress of each stage against its cap (`study_wide`: randomized per scope;
    `statuses`: planned/open/closed per scope), and the `subjects` of the reader's `site_ids`
    per stratum and per site (subjects of other sites must not be passed in)."""
    subjects = list(subjects)
    per_scope: Counter[str | None] = Counter()
    per_stratum: Counter[tuple[str | None, str | None]] = Counter()
    per_site: dict[str, list[Enrolled]] = {}
    for s in subjects:
        per_site.setdefault(s.site_id, []).append(s)
        if s.scope:
            per_scope[s.scope] += s.count
            per_stratum[(s.scope, s.stratum)] += s.count
    scopes: list[tuple[str, str, int]] = [(PHASE_IB, c.code, c.cap) for c in study.phase_ib.cohorts]
    scopes.append((PHASE_II, PHASE_II_SCOPE, study.phase_ii.cap))
    stages = [
        StageLine(stage, scope, statuses.get(scope, "planned"), cap, study_wide.get(scope, 0))
        for stage, scope, cap in scopes
    ]
    strata = [
        StratumLine(PHASE_IB, c.code, NO_STRATUM, per_stratum[(c.code, NO_STRATUM)])
        for c in study.phase_ib.cohorts
    ]
    strata += [
        StratumLine(PHASE_II, PHASE_II_SCOPE, s, per_stratum[(PHASE_II_SCOPE, s)])
        for s in study.phase_ii.strata()
    ]
    sites = []
    for site_id in site_ids:
        here = per_site.get(site_id, [])
        by_scope: Counter[str | None] = Counter()
        for s in here:
            if s.scope:
                by_scope[s.scope] += s.count
        sites.append(
            SiteLine(
                site_id,
                registered=sum(s.count for s in here),
                randomized=sum(by_scope.values()),
                by_scope={scope: by_scope.get(scope, 0) for _, scope, _ in scopes},
                by_status=status_counts(here),
            )
        )
    return EnrolmentReport(
        target=study.total_cap,
        registered=sum(s.count for s in subjects),
        randomized=sum(per_scope.values()),
        stages=stages,
        strata=strata,
        sites=sites,
        by_status=status_counts(subjects),
    )


_STATUSES = tuple(status.value for status in SubjectStatus)


def status_counts(subjects: Iterable[Enrolled]) -> dict[str, int]:
    """Subjects per lifecycle status, in the lifecycle's order, every status named."""
    counts: Counter[str] = Counter()
    for s in subjects:
        counts[s.status] += s.count
    # .get: a Counter's missing key goes through a Python-level __missing__, per site and status
    return {status: counts.get(status, 0) for status in _STATUSES}


# --- expiry outlook ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryWindow:
    """Kits expiring in (after, until] days from today; `until` None means beyond `after`."""

    label: str
    after: int | None
    until: int | None

    def holds(self, days: int) -> bool:
        return (self.after is None or days > self.after) and (
            self.until is None or days <= self.until
        )


def expiry_windows(do_not_dispense_days: int, do_not_ship_days: int) -> tuple[ExpiryWindow, ...]:
    """Windows cut at the study's thresholds: inside do-not-dispense (no longer usable),
    inside do-not-ship (usable at the site, not shippable), the next 30 days, and later."""
    horizon = do_not_ship_days + 30
    return (
        ExpiryWindow(
            f"<={do_not_dispense_days} days (do not dispense)", None, do_not_dispense_days
        ),
        ExpiryWindow(
            f"{do_not_dispense_days + 1}-{do_not_ship_days} days (do not ship)",
            do_not_dispense_days,
            do_not_ship_days,
        ),
        ExpiryWindow(f"{do_not_ship_days + 1}-{horizon} days", do_not_ship_days, horizon),
        ExpiryWindow(f">{horizon} days", horizon, None),
    )


@dataclass(frozen=True)
class StockKit:
    """A kit as a blinded report sees it: where it is, its status and its expiry date."""

    location: str
    status: str
    expiry_date: date
    count: int = 1
    """Kits alike in all of the above, counted once (the service counts them in SQL)."""


@dataclass(frozen=True)
class LocationStock:
    location: str
    kind: str  # "site" or "depot"
    total: int
    by_status: dict[str, int]
    in_stock: int
    by_window: dict[str, int]
    next_expiry: date | None


STOCK_STATUSES = frozenset({"available", "at_depot"})
"""The statuses that make up usable stock at a site (available) or a depot (at_depot)."""


def expiry_outlook(
    kits: Iterable[StockKit],
    *,
    locations: Sequence[tuple[str, str]],
    today: date,
    windows: Sequence[ExpiryWindow],
) -> list[LocationStock]:
    """Per location (name, kind): kits by status and the stock (available or at depot) by
    expiry window. Totals only: never by content, so the counts reveal nothing."""
    grouped: dict[str, list[StockKit]] = {name: [] for name, _ in locations}
    for kit in kits:
        if kit.location in grouped:
            grouped[kit.location].append(kit)
    report = []
    for name, kind in locations:
        here = [k for k in grouped[name] if k.count > 0]
        stock = [k for k in here if k.status in STOCK_STATUSES]
        by_window = dict.fromkeys((w.label for w in windows), 0)
        for kit in stock:
            days = (kit.expiry_date - today).days
            window = next(w for w in windows if w.holds(days))
            by_window[window.label] += kit.count
        by_status: Counter[str] = Counter()
        for kit in here:
            by_status[kit.status] += kit.count
        report.append(
            LocationStock(
                location=name,
                kind=kind,
                total=sum(k.count for k in here),
                by_status=dict(sorted(by_status.items())),
                in_stock=sum(k.count for k in stock),
                by_window=by_window,
                next_expiry=min((k.expiry_date for k in stock), default=None),
            )
        )
    return report
