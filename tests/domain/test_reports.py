"""Report aggregation: enrolment against caps and the blinded expiry outlook."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.reports import (
    STOCK_STATUSES,
    Enrolled,
    StockKit,
    enrolment,
    expiry_outlook,
    expiry_windows,
)
from app.domain.study import NO_STRATUM, PHASE_II_SCOPE, load_study

STUDY = load_study()
TODAY = date(2031, 3, 15)
SITES = ("DE01", "DE02", "US01")
SCOPES = (*(c.code for c in STUDY.phase_ib.cohorts), PHASE_II_SCOPE)
PROPERTY = settings(max_examples=200, deadline=None)


@st.composite
def enrolled(draw: st.DrawFn) -> Enrolled:
    site = draw(st.sampled_from(SITES))
    scope = draw(st.none() | st.sampled_from(SCOPES))
    if scope is None:
        return Enrolled(site)
    strata = STUDY.phase_ii.strata() if scope == PHASE_II_SCOPE else (NO_STRATUM,)
    return Enrolled(site, scope, draw(st.sampled_from(strata)))


@PROPERTY
@given(
    st.lists(enrolled(), max_size=60), st.dictionaries(st.sampled_from(SCOPES), st.integers(0, 300))
)
def test_enrolment_counts_every_subject_once_per_view(
    subjects: list[Enrolled], study_wide: dict[str, int]
) -> None:
    report = enrolment(
        STUDY, subjects=subjects, statuses={"C1": "open"}, site_ids=SITES, study_wide=study_wide
    )
    randomized = sum(1 for s in subjects if s.scope)
    assert (report.registered, report.randomized) == (len(subjects), randomized)
    assert sum(line.randomized for line in report.strata) == randomized
    assert sum(line.randomized for line in report.sites) == randomized
    assert sum(line.registered for line in report.sites) == len(subjects)
    for site in report.sites:
        assert sum(site.by_scope.values()) == site.randomized
    assert [line.scope for line in report.stages] == list(SCOPES)
    for line in report.stages:
        assert line.randomized == study_wide.get(line.scope, 0)
        assert line.remaining == max(line.cap - line.randomized, 0)
        assert line.status == ("open" if line.scope == "C1" else "planned")
    assert report.target == sum(line.cap for line in report.stages) == STUDY.total_cap


def test_enrolment_lists_every_stratum_and_site_even_when_empty() -> None:
    report = enrolment(STUDY, subjects=[], statuses={}, site_ids=["US01"], study_wide={})
    assert [(s.scope, s.stratum) for s in report.strata if s.scope == PHASE_II_SCOPE] == [
        (PHASE_II_SCOPE, s) for s in STUDY.phase_ii.strata()
    ]
    assert [(s.site_id, s.registered, s.by_scope) for s in report.sites] == [
        ("US01", 0, dict.fromkeys(SCOPES, 0))
    ]


@PROPERTY
@given(st.integers(0, 120), st.integers(0, 120), st.integers(-400, 1000))
def test_expiry_windows_put_every_day_in_exactly_one_window(
    dnd: int, extra: int, days: int
) -> None:
    windows = expiry_windows(dnd, dnd + extra)
    assert sum(w.holds(days) for w in windows) == 1
    assert windows[0].holds(dnd) and not windows[0].holds(dnd + 1)


def test_expiry_windows_of_the_study() -> None:
    labels = [w.label for w in expiry_windows(30, 60)]
    assert labels == [
        "<=30 days (do not dispense)",
        "31-60 days (do not ship)",
        "61-90 days",
        ">90 days",
    ]


statuses = st.sampled_from(["available", "at_depot", "dispensed", "quarantined", "in_transit"])
kits = st.builds(
    StockKit,
    location=st.sampled_from(["DE01", "DE02", "DEPOT-EU", "ELSEWHERE"]),
    status=statuses,
    expiry_date=st.integers(-10, 800).map(lambda d: TODAY + timedelta(days=d)),
)


@PROPERTY
@given(st.lists(kits, max_size=80))
def test_outlook_counts_stock_by_window_and_every_kit_by_status(stock: list[StockKit]) -> None:
    locations = [("DE01", "site"), ("DE02", "site"), ("DEPOT-EU", "depot")]
    windows = expiry_windows(30, 60)
    report = expiry_outlook(stock, locations=locations, today=TODAY, windows=windows)
    assert [(line.location, line.kind) for line in report] == locations
    for line in report:
        here = [k for k in stock if k.location == line.location]
        in_stock = [k for k in here if k.status in STOCK_STATUSES]
        assert line.total == len(here) == sum(line.by_status.values())
        assert line.in_stock == len(in_stock) == sum(line.by_window.values())
        assert list(line.by_window) == [w.label for w in windows]
        assert line.next_expiry == min((k.expiry_date for k in in_stock), default=None)
        soon = sum(1 for k in in_stock if (k.expiry_date - TODAY).days <= 30)
        assert line.by_window[windows[0].label] == soon


@PROPERTY
@given(st.lists(kits, max_size=80))
def test_kits_counted_alike_report_as_each_one(stock: list[StockKit]) -> None:
    """The service counts alike kits in SQL (`count`); the outlook is the same as over each
    kit on its own."""
    alike = Counter((k.location, k.status, k.expiry_date) for k in stock)
    grouped = [StockKit(*key, count=n) for key, n in alike.items()]
    locations = [("DE01", "site"), ("DE02", "site"), ("DEPOT-EU", "depot")]

    def outlook(over: list[StockKit]) -> object:
        return expiry_outlook(
            over, locations=locations, today=TODAY, windows=expiry_windows(30, 60)
        )

    assert outlook(grouped) == outlook(stock)


@PROPERTY
@given(st.lists(enrolled(), max_size=60))
def test_subjects_counted_alike_report_as_each_one(subjects: list[Enrolled]) -> None:
    """The service counts alike subjects in SQL (`count`); the report is the same as over each
    subject on its own."""
    alike = Counter((s.site_id, s.scope, s.stratum, s.status) for s in subjects)
    grouped = [Enrolled(*key, count=n) for key, n in alike.items()]

    def report(over: list[Enrolled]) -> object:
        return enrolment(
            STUDY, subjects=over, statuses={"C1": "open"}, site_ids=SITES, study_wide={"C1": 3}
        )

    assert report(grouped) == report(subjects)
