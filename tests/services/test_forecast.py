"""The live forecast (app/services/forecast.py), called directly on both engines: need grows with
the subjects randomized, a subject's visits count within the horizon and not beyond, the blinded
result names no content, arm or lot and its totals are the sums of the unblinded figures."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, is_dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Kit, Shipment, ShipmentKit, Site
from app.domain.errors import DomainError, InvalidInput, NotFound
from app.domain.kits import KitStatus
from app.domain.roles import Role
from app.domain.study import StudyDefinition, load_study
from app.services import sites, unblinded_allocations
from app.services.actor import SYSTEM, Actor
from app.services.forecast import (
    BlindedForecast,
    Forecast,
    SiteForecast,
    blind,
    forecast_csv,
    site_forecast,
)
from app.services.transaction import writing
from tests.support.helpers import login, today
from tests.support.supply import randomize_on

MONITOR = Actor("monitor", Role.UNBLINDED_MONITOR, frozenset())
SUPPLY = Actor("supply", Role.SUPPLY_MANAGER, frozenset())
SPONSOR = Actor("sponsor", Role.SPONSOR_ADMIN, frozenset())
PHARMACIST = Actor("pharmacist", Role.PHARMACIST, frozenset({"DE01", "DE02"}))
BLINDED = (SUPPLY, SPONSOR, PHARMACIST)
STUDY = load_study()
FIGURES = ("stock", "in_transit", "need_lead", "need_horizon", "balance", "order_quantity")


def run(db: Database, actor: Actor, weeks: int, **kwargs: Any) -> Forecast | BlindedForecast:
    with db.read() as session:
        return site_forecast(
            session=session, study=STUDY, actor=actor, today=today(), weeks=weeks, **kwargs
        )


def unblinded_run(db: Database, weeks: int) -> Forecast:
    result = run(db, MONITOR, weeks)
    assert isinstance(result, Forecast)
    return result


def blinded_run(db: Database, actor: Actor, weeks: int) -> BlindedForecast:
    result = run(db, actor, weeks)
    assert isinstance(result, BlindedForecast)
    return result


def site_of(result: Forecast, site_id: str) -> SiteForecast:
    return next(s for s in result.sites if s.site_id == site_id)


def need(result: Forecast, site_id: str) -> dict[str, int]:
    return {line.content: line.need_horizon for line in site_of(result, site_id).lines}


def arms(db: Database, study: StudyDefinition) -> dict[int, str]:
    """subject -> arm, as the unblinded monitor sees them."""
    with db.read() as session:
        return {
            row["subject_id"]: row["arm"]
            for row in unblinded_allocations.allocations(session, study)
        }


def no_recruitment(db: Database, *site_ids: str) -> None:
    """Expect no further subject at these sites: the need is then the randomized ones' alone."""
    with writing(db) as session:
        session.execute(update(Site).where(Site.id.in_(site_ids)).values(subjects_per_week=0))


def randomize_many(
    client: TestClient, site_id: str, count: int, day_one: date | None = None
) -> dict[int, int]:
    """subject -> vials per visit, for `count` subjects randomized at the site."""
    coordinator = login(client, "coordinator")
    vials = {}
    for _ in range(count):
        subject_id, body = randomize_on(client, coordinator, site_id, day_one or today())
        vials[subject_id] = len(body["kits"])
    return vials


# --- need -------------------------------------------------------------------------------------


def test_need_grows_by_the_visits_of_the_subjects_randomized(
    client: TestClient, demo_db: Database
) -> None:
    before = unblinded_run(demo_db, 8)
    assert before.horizon_days == 56 and before.weeks == 8
    assert [s.site_id for s in before.sites] == ["DE01", "DE02", "US01"]
    # C1 has 8 places and a site expects 0.5 subjects a week, 4 in 8 weeks: randomizing 3
    # leaves the subjects still to come as they were, so the growth is the 3 subjects' own
    vials = randomize_many(client, "DE01", 3)
    after = unblinded_run(demo_db, 8)
    allocation = arms(demo_db, STUDY)
    expected = dict.fromkeys(STUDY.contents, 0)
    for subject_id, n in vials.items():
        expected[allocation[subject_id]] += 2 * n  # W4 (day 28) and W8 (day 56)
    grown = {c: need(after, "DE01")[c] - need(before, "DE01")[c] for c in STUDY.contents}
    assert grown == expected
    assert sum(grown.values()) > 0
    assert need(after, "DE02") == need(before, "DE02")
    blinded_after = {s.site_id: s for s in blinded_run(demo_db, SUPPLY, 8).sites}
    assert blinded_after["DE01"].need_horizon == sum(need(after, "DE01").values())


def test_a_subjects_visits_count_within_the_horizon_and_not_beyond(
    client: TestClient, demo_db: Database
) -> None:
    no_recruitment(demo_db, "DE01", "DE02")
    assert sum(need(unblinded_run(demo_db, 52), "DE01").values()) == 0
    # day 1 two weeks ago: W4 is due in 14 days, W8 in 42, W12 in 70, ..., W48 in 322
    [(subject, vials)] = randomize_many(client, "DE01", 1, today() - timedelta(days=14)).items()
    # day 1 thirty days ago: W4 was due two days ago (overdue counts), W8 is due in 26 days,
    # W12 in 54, ..., W48 in 334
    [(_, late_vials)] = randomize_many(client, "DE02", 1, today() - timedelta(days=30)).items()
    content = arms(demo_db, STUDY)[subject]
    # weeks of horizon -> visits inside it, at DE01 and at DE02
    expected_visits = {1: (0, 1), 2: (1, 1), 5: (1, 2), 6: (2, 2), 9: (2, 3), 10: (3, 3)}
    expected_visits[52] = (12, 12)  # every visit after day 1
    for weeks, (visits, late_visits) in expected_visits.items():
        result = unblinded_run(demo_db, weeks)
        by_content = need(result, "DE01")
        assert by_content[content] == visits * vials, weeks
        assert sum(by_content.values()) == visits * vials, weeks  # the other content: 0
        assert sum(need(result, "DE02").values()) == late_visits * late_vials, weeks
        totals = {s.site_id: s for s in blinded_run(demo_db, SUPPLY, weeks).sites}
        assert totals["DE01"].need_horizon == visits * vials
    # within the 7-day lead time: DE01 needs nothing yet, DE02 its overdue visit
    result = unblinded_run(demo_db, 1)
    assert sum(line.need_lead for line in site_of(result, "DE01").lines) == 0
    assert sum(line.need_lead for line in site_of(result, "DE02").lines) == late_vials


def test_subjects_still_to_come_count_at_the_sites_rate(demo_db: Database) -> None:
    """No one randomized yet: the need is the subjects expected in C1, split 3:1 (rounded up)."""
    result = unblinded_run(demo_db, 8)
    for site in result.sites:
        by_content = {line.content: line.need_horizon for line in site.lines}
        assert by_content["IMC002"] > by_content["PLACEBO"] > 0
    no_recruitment(demo_db, "DE01")
    assert sum(need(unblinded_run(demo_db, 8), "DE01").values()) == 0


# --- blinding ---------------------------------------------------------------------------------


def _trial_in_both_arms(client: TestClient, db: Database) -> None:
    """Four C1 subjects (one block: both arms), a site short of stock so that a shipment is due
    and the policy orders, and one requested shipment (kits in transit)."""
    randomize_many(client, "DE01", 4, today() - timedelta(days=20))
    assert set(arms(db, STUDY).values()) == set(STUDY.contents)
    with writing(db) as session:
        sites.set_levels(session, study=STUDY, actor=SYSTEM, site_id="DE02", trigger=60, target=90)
    supply = login(client, "supply")
    body = {"site_id": "US01", "kits_per_content": 2, "reason": "forecast test"}
    response = client.post("/api/v1/shipments", json=body, headers=supply)
    assert response.status_code == 201, response.text


def _field_names(value: Any) -> set[str]:
    if is_dataclass(value) and not isinstance(value, type):
        names = {f.name for f in fields(value)}
        for f in fields(value):
            names |= _field_names(getattr(value, f.name))
        return names
    if isinstance(value, tuple | list):
        return {name for item in value for name in _field_names(item)}
    return set()


def test_the_blinded_result_names_no_content_arm_or_lot(
    client: TestClient, demo_db: Database
) -> None:
    _trial_in_both_arms(client, demo_db)
    with demo_db.read() as session:
        lots = set(session.execute(select(Kit.lot).distinct()).scalars())
    codes = set(STUDY.contents) | {arm.code for arm in STUDY.arms}
    assert len(lots) >= 2 and len(codes) >= 2
    for weeks in (1, 8, 52):
        for actor in BLINDED:
            result = blinded_run(demo_db, actor, weeks)
            assert result.sites, actor
            text = json.dumps(asdict(result), default=str) + forecast_csv(result)
            for secret in codes:
                assert secret.lower() not in text.lower(), (actor.role, weeks, secret)
            for lot in lots:
                assert lot not in text, (actor.role, weeks, lot)
            words = {w for name in _field_names(result) for w in name.split("_")}
            assert not words & {"content", "contents", "arm", "arms", "lot", "lots", "lines"}
            assert "content" not in forecast_csv(result).splitlines()[0]
    # the control: the monitor's result does name the contents
    monitor = unblinded_run(demo_db, 8)
    text = json.dumps(asdict(monitor), default=str) + forecast_csv(monitor)
    assert all(code in text for code in STUDY.contents)


def test_per_content_figures_sum_to_the_blinded_totals(
    client: TestClient, demo_db: Database
) -> None:
    _trial_in_both_arms(client, demo_db)
    seen_due = seen_order = seen_transit = False
    for weeks in (1, 4, 8, 26, 52):
        monitor = unblinded_run(demo_db, weeks)
        supply = blinded_run(demo_db, SUPPLY, weeks)
        assert supply == blind(monitor)
        assert blinded_run(demo_db, SPONSOR, weeks) == supply
        assert [t.site_id for t in supply.sites] == [s.site_id for s in monitor.sites]
        for site, totals in zip(monitor.sites, supply.sites, strict=True):
            assert [line.content for line in site.lines] == list(STUDY.contents)
            for figure in FIGURES:
                per_content = sum(getattr(line, figure) for line in site.lines)
                assert getattr(totals, figure) == per_content, (weeks, site.site_id, figure)
            assert totals.balance == totals.stock + totals.in_transit - totals.need_horizon
            assert totals.shipment_due == site.shipment_due
            assert totals.need_lead <= totals.need_horizon or weeks == 1
            seen_due |= site.shipment_due
            seen_order |= totals.order_quantity > 0
            seen_transit |= totals.in_transit > 0
            if not site.shipment_due:
                assert totals.order_quantity == 0
        balance = {t.site_id: t.balance for t in supply.sites}
        for depot, depot_totals in zip(monitor.depots, supply.depots, strict=True):
            shippable, shortfall = depot_totals.shippable, depot_totals.shortfall
            assert shippable == sum(line.shippable for line in depot.lines)
            assert shortfall == sum(max(0, -balance[s]) for s in depot.site_ids)
            assert depot_totals.balance == shippable - shortfall
            for line in depot.lines:
                assert line.shortfall == sum(
                    max(0, -x.balance)
                    for s in monitor.sites
                    if s.depot_id == depot.depot_id
                    for x in s.lines
                    if x.content == line.content
                )
    assert seen_due and seen_order and seen_transit


def test_the_depot_offers_the_kits_it_could_ship_today(demo_db: Database) -> None:
    """At the depot, not picked for a requested shipment, outside the do-not-ship window (every
    expiry date of the demo list holds every content, so nothing is stranded)."""
    cutoff = today() + timedelta(days=STUDY.supply.do_not_ship_days)
    picked = select(ShipmentKit.kit_number).join(Shipment).where(Shipment.status == "requested")
    with demo_db.read() as session:
        counts = {
            content: len(
                session.execute(
                    select(Kit.kit_number).where(
                        Kit.depot_id == "DEPOT-EU",
                        Kit.content == content,
                        Kit.status == KitStatus.AT_DEPOT.value,
                        Kit.expiry_date > cutoff,
                        Kit.kit_number.not_in(picked),
                    )
                ).all()
            )
            for content in STUDY.contents
        }
    [depot] = unblinded_run(demo_db, 8).depots
    assert depot.depot_id == "DEPOT-EU" and depot.site_ids == ("DE01", "DE02", "US01")
    assert {line.content: line.shippable for line in depot.lines} == counts
    assert all(n > 0 for n in counts.values())


# --- scope and refusals -----------------------------------------------------------------------


def test_site_roles_see_their_own_sites_and_no_depot(demo_db: Database) -> None:
    result = blinded_run(demo_db, PHARMACIST, 8)
    assert [s.site_id for s in result.sites] == ["DE01", "DE02"]
    assert result.depots == ()
    assert [s.site_id for s in blinded_run(demo_db, SUPPLY, 8).sites] == ["DE01", "DE02", "US01"]
    assert len(blinded_run(demo_db, SPONSOR, 8).depots) == 1
    one = run(demo_db, PHARMACIST, 8, site_id="DE02")
    assert [s.site_id for s in one.sites] == ["DE02"] and one.depots == ()
    for actor, site_id in ((PHARMACIST, "US01"), (SUPPLY, "XX99"), (MONITOR, "XX99")):
        with pytest.raises(DomainError) as refused:
            run(demo_db, actor, 8, site_id=site_id)
        assert isinstance(refused.value, NotFound) and refused.value.code == "not_found"


def test_inactive_sites_are_left_out(demo_db: Database) -> None:
    with writing(demo_db) as session:
        session.execute(update(Site).where(Site.id == "US01").values(active=False))
    result = unblinded_run(demo_db, 8)
    assert [s.site_id for s in result.sites] == ["DE01", "DE02"]
    assert result.depots[0].site_ids == ("DE01", "DE02")


def test_weeks_out_of_range_are_refused(demo_db: Database) -> None:
    for weeks in (0, -1, 53, 1000):
        for actor in (MONITOR, SUPPLY):
            with pytest.raises(DomainError) as refused:
                run(demo_db, actor, weeks)
            error = refused.value
            assert (type(error), error.code) == (InvalidInput, "validation_error")
            assert [e["field"] for e in error.extra["errors"]] == ["weeks"]
            assert "weeks" in error.detail
    assert run(demo_db, SUPPLY, 1).weeks == 1 and run(demo_db, SUPPLY, 52).weeks == 52
