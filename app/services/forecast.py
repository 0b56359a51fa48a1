"""The live forecast: each active site's and each depot's need over the next N weeks, from the
current database state, by the same code as the resupply (app/services/resupply.py and the pure
rules of app/domain/forecast.py and app/domain/resupply.py).

Blinding: need per content at a site follows how many of its subjects are on each arm, so only
the unblinded monitor gets the figures per content (`Forecast`). Every other role gets
`BlindedForecast`, built here from the unblinded one by summing over contents: it has no field
that could hold a content, and the web and API layers never see the unblinded result for a
blinded user. A shortfall is a non-linear figure (the part of a balance below zero): in the
blinded view it is taken of the totals, since the sum of per-content shortfalls would tell a
content in surplus from one short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import Depot, Site
from app.domain.csv_cells import csv_records
from app.domain.errors import not_found, validation_error
from app.domain.forecast import site_need
from app.domain.resupply import depot_shippable, order_quantities, shipment_due
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services.actor import Actor
from app.services.depot_shelf import shippable_counts
from app.services.resupply import on_treatment, site_positions
from app.services.site_stages import site_enrolment, site_levels
from app.services.transaction import utcnow

MIN_WEEKS = 1
MAX_WEEKS = 52
DEFAULT_WEEKS = 8


# --- the unblinded forecast (per content) ---------------------------------------------------


@dataclass(frozen=True)
class ContentLine:
    """One content at one site."""

    content: str
    stock: int
    """Matched kits still dispensable when a shipment ordered today would arrive."""
    in_transit: int
    """Kits in the site's open shipments (requested or shipped)."""
    need_lead: int
    """Vials needed within the lead time."""
    need_horizon: int
    """Vials needed within the N weeks of the forecast."""
    order_quantity: int
    """Kits the policy would order now (0 when no shipment is due)."""

    @property
    def balance(self) -> int:
        """Projected balance at the end of the N weeks: stock + in transit - need."""
        return self.stock + self.in_transit - self.need_horizon

    @property
    def shortfall(self) -> int:
        return max(0, -self.balance)


@dataclass(frozen=True)
class SiteForecast:
    site_id: str
    name: str
    depot_id: str | None
    lead_days: int
    shipment_due: bool
    """Whether the resupply policy asks for a shipment now."""
    lines: tuple[ContentLine, ...]


@dataclass(frozen=True)
class DepotLine:
    """One content at one depot: kits shippable today against its sites' shortfall."""

    content: str
    shippable: int
    """At the depot, not picked for a shipment, outside the do-not-ship window, and at an expiry
    date the depot holds of every content (a shipment takes every content at the same dates)."""
    shortfall: int
    """Sum over the depot's sites of the part of their projected balance below zero."""

    @property
    def balance(self) -> int:
        return self.shippable - self.shortfall


@dataclass(frozen=True)
class DepotForecast:
    depot_id: str
    name: str
    site_ids: tuple[str, ...]
    lines: tuple[DepotLine, ...]


@dataclass(frozen=True)
class Forecast:
    """The unblinded forecast: only for the unblinded monitor."""

    as_of: date
    weeks: int
    horizon_days: int
    sites: tuple[SiteForecast, ...]
    depots: tuple[DepotForecast, ...]


# --- the blinded forecast (totals over contents) -----------------------------------------------


@dataclass(frozen=True)
class SiteTotals:
    site_id: str
    name: str
    depot_id: str | None
    lead_days: int
    shipment_due: bool
    stock: int
    in_transit: int
    need_lead: int
    need_horizon: int
    balance: int
    order_quantity: int


@dataclass(frozen=True)
class DepotTotals:
    depot_id: str
    name: str
    site_ids: tuple[str, ...]
    shippable: int
    shortfall: int
    """Sum over the depot's sites of the part of their total projected balance below zero."""
    balance: int


@dataclass(frozen=True)
class BlindedForecast:
    """The forecast every blinded role gets: no content, arm or lot, no figure per content."""

    as_of: date
    weeks: int
    horizon_days: int
    sites: tuple[SiteTotals, ...]
    depots: tuple[DepotTotals, ...]


def blind(forecast: Forecast) -> BlindedForecast:
    """Every per-content figure summed over contents; shortfalls taken of the totals."""
    sites = tuple(
        SiteTotals(
            site_id=s.site_id,
            name=s.name,
            depot_id=s.depot_id,
            lead_days=s.lead_days,
            shipment_due=s.shipment_due,
            stock=sum(line.stock for line in s.lines),
            in_transit=sum(line.in_transit for line in s.lines),
            need_lead=sum(line.need_lead for line in s.lines),
            need_horizon=sum(line.need_horizon for line in s.lines),
            balance=sum(line.balance for line in s.lines),
            order_quantity=sum(line.order_quantity for line in s.lines),
        )
        for s in forecast.sites
    )
    balance_of = {s.site_id: s.balance for s in sites}
    depots = []
    for d in forecast.depots:
        shippable = sum(line.shippable for line in d.lines)
        shortfall = sum(max(0, -balance_of[site_id]) for site_id in d.site_ids)
        depots.append(
            DepotTotals(d.depot_id, d.name, d.site_ids, shippable, shortfall, shippable - shortfall)
        )
    return BlindedForecast(
        forecast.as_of, forecast.weeks, forecast.horizon_days, sites, tuple(depots)
    )


# --- the use case -------------------------------------------------------------------------------


def check_weeks(weeks: int) -> int:
    if not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise validation_error(
            "weeks",
            f"The forecast covers {MIN_WEEKS} to {MAX_WEEKS} weeks; {weeks} is out of range.",
        )
    return weeks


def site_forecast(
    *,
    session: Session,
    study: StudyDefinition,
    actor: Actor,
    today: date,
    weeks: int,
    site_id: str | None = None,
) -> Forecast | BlindedForecast:
    """The forecast over the next `weeks` weeks (1 to 52) as the actor may see it: per content
    for the unblinded monitor, totals over contents for everyone else. Site roles get their own
    active sites and no depot (a depot's shortfall adds up other sites'). With `site_id`, that
    active site only (404 unless the actor sees it), without depots."""
    forecast = _forecast(
        session, study=study, actor=actor, today=today, weeks=check_weeks(weeks), site_id=site_id
    )
    return forecast if actor.role == Role.UNBLINDED_MONITOR else blind(forecast)


def read_forecast(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    weeks: int,
    site_id: str | None = None,
) -> Forecast | BlindedForecast:
    """Today's forecast as `actor` may see it, in a read transaction of its own: one read for
    the JSON, the CSV and the page."""
    with db.read() as session:
        return site_forecast(
            session=session,
            study=study,
            actor=actor,
            today=utcnow().date(),
            weeks=weeks,
            site_id=site_id,
        )


def _forecast(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    today: date,
    weeks: int,
    site_id: str | None,
) -> Forecast:
    horizon = weeks * 7
    active = [
        site
        for site in session.execute(select(Site).where(Site.active).order_by(Site.id)).scalars()
        if actor.sees_site(site.id) and site_id in (None, site.id)
    ]
    if site_id is not None and not active:
        raise not_found(f"Active site {site_id}")
    sites = tuple(
        _site(session, study=study, site=site, today=today, horizon_days=horizon) for site in active
    )
    depots: tuple[DepotForecast, ...] = ()
    if actor.sees_every_site and site_id is None:
        depots = tuple(
            _depot(session, study=study, depot=depot, sites=sites, today=today)
            for depot in session.execute(select(Depot).order_by(Depot.id)).scalars()
        )
    return Forecast(today, weeks, horizon, sites, depots)


def _site(
    session: Session, *, study: StudyDefinition, site: Site, today: date, horizon_days: int
) -> SiteForecast:
    pools = site_positions(session, study=study, site=site, today=today)
    enrolment, _ = site_enrolment(session, study=study, site=site)
    need = site_need(
        on_treatment(session, site.id),
        enrolment=enrolment,
        visits=study.schedule.visits(),
        contents=study.contents,
        today=today,
        horizon_days=horizon_days,
    )
    # per stage pool (app/domain/stage_pools.py), summed: a shipment tops up each pool short
    due = any(shipment_due(p.positions, p.levels, p.floor) for p in pools.values())
    orders = [order_quantities(p.positions, p.levels, p.floor) for p in pools.values()]
    lines = tuple(
        ContentLine(
            content=content,
            stock=sum(p.positions[content].stock for p in pools.values()),
            in_transit=sum(p.positions[content].in_transit for p in pools.values()),
            need_lead=sum(p.positions[content].need_lead for p in pools.values()),
            need_horizon=need[content],
            order_quantity=sum(order.get(content, 0) for order in orders),
        )
        for content in study.contents
    )
    lead = site_levels(session, study=study, site=site).lead_days
    return SiteForecast(site.id, site.name, site.depot_id, lead, due, lines)


def _depot(
    session: Session,
    *,
    study: StudyDefinition,
    depot: Depot,
    sites: Sequence[SiteForecast],
    today: date,
) -> DepotForecast:
    shippable = depot_shippable(
        shippable_counts(
            session, depot_id=depot.id, today=today, window_days=study.supply.do_not_ship_days
        ),
        study.contents,
    )
    supplied = [s for s in sites if s.depot_id == depot.id]
    lines = tuple(
        DepotLine(
            content=content,
            shippable=shippable.get(content, 0),
            shortfall=sum(
                line.shortfall for s in supplied for line in s.lines if line.content == content
            ),
        )
        for content in study.contents
    )
    return DepotForecast(depot.id, depot.name, tuple(s.site_id for s in supplied), lines)


# --- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "as_of",
    "weeks",
    "level",
    "id",
    "depot_id",
    "content",
    "stock",
    "in_transit",
    "need_lead",
    "need_horizon",
    "balance",
    "shipment_due",
    "order_quantity",
    "shippable",
    "shortfall",
)
"""The unblinded file's columns; the blinded file has all but `content`."""


def forecast_csv(result: Forecast | BlindedForecast) -> str:
    """One row per site and per depot (column `level`); per content, and with a `content`
    column, only in the unblinded file. A depot row's `balance` is shippable - shortfall. Cells
    go through `csv_cell`: a negative figure is written '-3 (app/domain/csv_cells.py says why)."""
    common = {"as_of": result.as_of.isoformat(), "weeks": result.weeks}
    rows: list[dict[str, object]] = []
    header: tuple[str, ...] = CSV_COLUMNS
    if isinstance(result, Forecast):
        for s in result.sites:
            site = {**common, "level": "site", "id": s.site_id, "depot_id": s.depot_id}
            site |= {"shipment_due": s.shipment_due}
            rows += [
                {
                    **site,
                    "content": line.content,
                    "stock": line.stock,
                    "in_transit": line.in_transit,
                    "need_lead": line.need_lead,
                    "need_horizon": line.need_horizon,
                    "balance": line.balance,
                    "order_quantity": line.order_quantity,
                }
                for line in s.lines
            ]
        for d in result.depots:
            rows += [
                {
                    **common,
                    "level": "depot",
                    "id": d.depot_id,
                    "content": line.content,
                    "shippable": line.shippable,
                    "shortfall": line.shortfall,
                    "balance": line.balance,
                }
                for line in d.lines
            ]
    else:
        header = tuple(c for c in CSV_COLUMNS if c != "content")
        rows += [{**common, "level": "site", "id": t.site_id, **_figures(t)} for t in result.sites]
        rows += [
            {
                **common,
                "level": "depot",
                "id": t.depot_id,
                "shippable": t.shippable,
                "shortfall": t.shortfall,
                "balance": t.balance,
            }
            for t in result.depots
        ]
    return csv_records(header, rows)


def _figures(site: SiteTotals) -> dict[str, object]:
    return {
        "depot_id": site.depot_id,
        "stock": site.stock,
        "in_transit": site.in_transit,
        "need_lead": site.need_lead,
        "need_horizon": site.need_horizon,
        "balance": site.balance,
        "shipment_due": site.shipment_due,
        "order_quantity": site.order_quantity,
    }
