"""Supply manager pages (blinded): shipments (request, ship, cancel), quarantine decisions,
supply levels per site and depot stock. Each form runs the use case of the API route it
mirrors (app/services/supply_commands.py, app/api/supply.py) with the same request schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, RowId, StudyDep
from app.api.problems import status_of
from app.api.schemas import ReasonIn, ShipmentRequestIn, SupplyLevelsIn
from app.domain.errors import NotFound
from app.domain.roles import SUPPLY_MANAGERS
from app.domain.study import StudyDefinition
from app.services import depots, inventory, shipments, sites, supply_commands
from app.services.actor import Actor
from app.services.transaction import utcnow
from app.web.forms import (
    Form,
    FormErrors,
    FormState,
    form_values,
    post_form,
    render_form,
    submit,
)
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

Supply = Annotated[Actor, Depends(page_actor(*SUPPLY_MANAGERS))]
SiteId = Annotated[str, Path(max_length=12)]
KitNumber = Annotated[str, Path(max_length=16)]
SHIPMENT_STATUSES = ("requested", "shipped", "received", "quarantined", "rejected", "cancelled")
StatusFilter = Annotated[str, Query(pattern="^(" + "|".join(SHIPMENT_STATUSES) + ")?$")]
SiteFilter = Annotated[str, Query(max_length=12)]
DECISIONS = [("release", "Release"), ("reject", "Reject (damaged)")]
FORECAST_URL = "/supply/forecast"
"""The forecast page (its own module); the supply home links to it."""
DONE = {
    "requested": "The shipment is requested: its kits are picked at the depot.",
    "shipped": "The shipment is shipped: its kits are in transit to the site.",
    "cancelled": "The shipment is cancelled: its kits stay at the depot.",
    "released": "Released: the kits are back in stock.",
    "rejected": "Rejected: the kits are recorded as damaged.",
    "levels": "The supply levels are saved; the next resupply check of the site uses them.",
}
"""Messages after a successful POST, chosen by the `done` query parameter (never echoed)."""


def _notice(done: str) -> str:
    return DONE.get(done, "")


# --- home ---------------------------------------------------------------------------------------


@router.get("/supply", response_class=HTMLResponse)
def supply_home(request: Request, actor: Supply, db: DB) -> Response:
    """What waits for the supply manager, the supply pages, and the place of the forecast."""
    with db.read() as session:
        waiting = {
            status: len(shipments.list_shipments(session, actor=actor, site_id=None, status=status))
            for status in ("requested", "shipped", "quarantined")
        }
        held = inventory.quarantined(session, actor)
    return render(
        request,
        "supply/home.html",
        title="Supply",
        waiting=waiting,
        quarantined_kits=len(held["kits"]),
        forecast_url=FORECAST_URL,
    )


# --- shipments ----------------------------------------------------------------------------------


@router.get("/supply/shipments", response_class=HTMLResponse)
def shipment_list(
    request: Request,
    actor: Supply,
    db: DB,
    site_id: SiteFilter = "",
    status: StatusFilter = "",
) -> Response:
    """Every shipment, filtered by site and status."""
    with db.read() as session:
        rows = shipments.list_shipments(
            session, actor=actor, site_id=site_id or None, status=status or None
        )
        choices = [s["site_id"] for s in sites.list_sites(session, actor)]
    return render(
        request,
        "supply/shipments.html",
        title="Shipments",
        shipments=rows,
        sites=choices,
        statuses=SHIPMENT_STATUSES,
        site_id=site_id,
        status=status,
    )


def _request_page(
    request: Request, *, db: DB, actor: Actor, form: FormState | None = None
) -> Response:
    with db.read() as session:
        choices = [s["site_id"] for s in sites.list_sites(session, actor)]
    return render_form(
        request,
        "supply/request.html",
        form=form,
        title="Request a shipment",
        site_options=[(s, s) for s in choices],
    )


@router.get("/supply/shipments/new", response_class=HTMLResponse)
def request_form(request: Request, actor: Supply, db: DB) -> Response:
    """The form to request a manual shipment for a site."""
    return _request_page(request, db=db, actor=actor)


@router.post("/supply/shipments", response_class=HTMLResponse)
def request_shipment(
    request: Request, actor: Supply, form: Form, db: DB, study: StudyDep
) -> Response:
    """A manual shipment: the same number of kits of each content, so it reveals nothing."""
    values = form_values(form)
    created: list[int] = []
    try:
        refused = submit(
            values,
            parse=lambda: ShipmentRequestIn.model_validate(
                {k: values.get(k, "") for k in ("site_id", "kits_per_content", "reason")}
            ),
            run=lambda body: created.append(
                supply_commands.request_shipment(
                    db=db,
                    study=study,
                    actor=actor,
                    site_id=body.site_id,
                    kits_per_content=body.kits_per_content,
                    reason=body.reason,
                ).shipment_id
            ),
        )
    except NotFound as exc:  # the site chosen does not exist
        refused = FormState(
            values, FormErrors({"site_id": exc.detail}, [exc.detail]), status_of(exc)
        )
    if refused is not None:
        return _request_page(request, db=db, actor=actor, form=refused)
    return see_other(f"/supply/shipments/{created[0]}?done=requested")


def _shipment_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    shipment_id: int,
    form: FormState | None = None,
    done: str = "",
) -> Response:
    return render_form(
        request,
        "supply/shipment.html",
        form=form,
        title=f"Shipment {shipment_id}",
        shipment=supply_commands.get_shipment(db=db, actor=actor, shipment_id=shipment_id),
        notice=_notice(done),
    )


@router.get("/supply/shipments/{shipment_id}", response_class=HTMLResponse)
def shipment_page(
    request: Request, shipment_id: RowId, actor: Supply, db: DB, done: str = ""
) -> Response:
    """One shipment with its kits (number, expiry, status); ship or cancel it while requested."""
    return _shipment_page(request, db=db, actor=actor, shipment_id=shipment_id, done=done)


@router.post("/supply/shipments/{shipment_id}/ship", response_class=HTMLResponse)
def ship(request: Request, shipment_id: RowId, actor: Supply, db: DB, study: StudyDep) -> Response:
    """The depot sends the requested shipment: its kits go in transit to the site."""
    return post_form(
        {},
        parse=lambda: None,
        run=lambda _: supply_commands.ship_shipment(
            db=db, study=study, actor=actor, shipment_id=shipment_id
        ),
        again=lambda refused: _shipment_page(
            request, db=db, actor=actor, shipment_id=shipment_id, form=refused
        ),
        done=f"/supply/shipments/{shipment_id}?done=shipped",
    )


@router.post("/supply/shipments/{shipment_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, shipment_id: RowId, actor: Supply, form: Form, db: DB) -> Response:
    """A requested shipment is not sent: its kits stay at the depot."""
    values = form_values(form)
    return post_form(
        values,
        parse=lambda: ReasonIn(reason=values.get("reason", "")),
        run=lambda body: supply_commands.cancel_shipment(
            db=db, actor=actor, shipment_id=shipment_id, reason=body.reason
        ),
        again=lambda refused: _shipment_page(
            request, db=db, actor=actor, shipment_id=shipment_id, form=refused
        ),
        done=f"/supply/shipments/{shipment_id}?done=cancelled",
    )


# --- quarantine ---------------------------------------------------------------------------------


def _quarantine_page(
    request: Request, *, db: DB, actor: Actor, form: FormState | None = None, done: str = ""
) -> Response:
    with db.read() as session:
        held = inventory.quarantined(session, actor)
    return render_form(
        request,
        "supply/quarantine.html",
        form=form,
        title="Quarantine",
        held=held,
        decisions=DECISIONS,
        notice=_notice(done),
    )


@router.get("/supply/quarantine", response_class=HTMLResponse)
def quarantine(request: Request, actor: Supply, db: DB, done: str = "") -> Response:
    """Quarantined shipments and kits, each with its decision: release or reject."""
    return _quarantine_page(request, db=db, actor=actor, done=done)


def _decision(values: dict[str, str], prefix: str) -> Literal["release", "reject"]:
    decision = values.get(f"{prefix}decision", "")
    if decision not in ("release", "reject"):
        raise ValueError(decision)
    return "release" if decision == "release" else "reject"


def _decided(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    values: dict[str, str],
    prefix: str,
    run: Callable[[ReasonIn, bool], object],
) -> Response:
    """A quarantine decision: release or reject, with a reason (fields named with `prefix`)."""

    def again(refused: FormState) -> Response:
        return _quarantine_page(request, db=db, actor=actor, form=refused)

    try:
        release = _decision(values, prefix) == "release"
    except ValueError:
        errors = FormErrors()
        errors.add(f"{prefix}decision", "choose release or reject")
        return again(FormState(values, errors, 422))
    return post_form(
        values,
        parse=lambda: ReasonIn(reason=values.get(f"{prefix}reason", "")),
        run=lambda body: run(body, release),
        again=again,
        done=f"/supply/quarantine?done={'released' if release else 'rejected'}",
        prefix=prefix,
    )


@router.post("/supply/quarantine/shipments/{shipment_id}", response_class=HTMLResponse)
def decide_shipment(
    request: Request, shipment_id: RowId, actor: Supply, form: Form, db: DB, study: StudyDep
) -> Response:
    """Release (kits available) or reject (kits damaged) a quarantined shipment, with a reason:
    POST /api/v1/shipments/{id}/release or /reject."""
    return _decided(
        request,
        db=db,
        actor=actor,
        values=form_values(form),
        prefix=f"shipment-{shipment_id}.",
        run=lambda body, release: supply_commands.resolve_quarantine(
            db=db,
            study=study,
            actor=actor,
            shipment_id=shipment_id,
            release=release,
            reason=body.reason,
        ),
    )


@router.post("/supply/quarantine/kits/{kit_number}", response_class=HTMLResponse)
def decide_kit(
    request: Request, kit_number: KitNumber, actor: Supply, form: Form, db: DB, study: StudyDep
) -> Response:
    """Release one quarantined kit (back to available at a site, to the depot's stock at a
    depot) or reject it as damaged: POST /api/v1/kits/{kit}/status."""
    return _decided(
        request,
        db=db,
        actor=actor,
        values=form_values(form),
        prefix=f"kit-{kit_number}.",
        run=lambda body, release: supply_commands.resolve_kit_quarantine(
            db=db,
            study=study,
            actor=actor,
            kit_number=kit_number,
            release=release,
            reason=body.reason,
        ),
    )


# --- supply levels ------------------------------------------------------------------------------


def _levels_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    study: StudyDefinition,
    form: FormState | None = None,
    done: str = "",
) -> Response:
    with db.read() as session:
        rows = sites.levels_view(session, study=study, actor=actor)
    return render_form(
        request,
        "supply/levels.html",
        form=form,
        defaults={f"{r['site_id']}.{k}": str(r[k]) for r in rows for k in ("trigger", "target")},
        title="Supply levels",
        sites=rows,
        default=(study.supply.resupply_trigger, study.supply.resupply_target),
        notice=_notice(done),
    )


@router.get("/supply/levels", response_class=HTMLResponse)
def levels(request: Request, actor: Supply, db: DB, study: StudyDep, done: str = "") -> Response:
    """Each site's resupply trigger and target (the same for every content)."""
    return _levels_page(request, db=db, actor=actor, study=study, done=done)


@router.post("/supply/levels/{site_id}", response_class=HTMLResponse)
def set_levels(
    request: Request, site_id: SiteId, actor: Supply, form: Form, db: DB, study: StudyDep
) -> Response:
    """PUT /api/v1/sites/{id}/supply-levels: the same schema and use case."""
    values = form_values(form)
    prefix = f"{site_id}."
    return post_form(
        values,
        parse=lambda: SupplyLevelsIn.model_validate(
            {k: values.get(f"{prefix}{k}", "") for k in ("trigger", "target")}
        ),
        run=lambda body: supply_commands.set_supply_levels(
            db=db,
            study=study,
            actor=actor,
            site_id=site_id,
            trigger=body.trigger,
            target=body.target,
        ),
        again=lambda refused: _levels_page(request, db=db, actor=actor, study=study, form=refused),
        done=f"/supply/levels?done=levels#site-{site_id}",
        prefix=prefix,
    )


# --- depot stock --------------------------------------------------------------------------------


@router.get("/supply/depots", response_class=HTMLResponse)
def depot_stock(request: Request, actor: Supply, db: DB, study: StudyDep) -> Response:
    """Each depot's kits by status and by expiry date: totals only, never per content or lot
    (GET /api/v1/depots/{id}/stock)."""
    today = utcnow().date()
    with db.read() as session:
        stock = [
            depots.depot_stock(session, study=study, depot_id=d["depot_id"], today=today)
            for d in depots.list_depots(session)
        ]
    return render(request, "supply/depots.html", title="Depot stock", depots=stock)
