"""Pharmacy pages: site inventory, shipments and their receipt, kit replacement (blinded)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.schemas import ReceiveIn, ReplaceIn
from app.domain.errors import DomainError
from app.domain.kits import KitStatus
from app.domain.roles import PHARMACISTS, PHARMACY
from app.services import commands, inventory, shipments, sites
from app.services.actor import Actor
from app.services.subjects import get_visible_subject
from app.services.transaction import utcnow
from app.web.forms import (
    Form,
    FormErrors,
    FormState,
    blank_to_none,
    checkbox,
    errors_from_validation,
    form_values,
    new_idempotency_key,
    refused_form,
    render_form,
)
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

Pharmacy = Annotated[Actor, Depends(page_actor(*PHARMACY))]
Pharmacist = Annotated[Actor, Depends(page_actor(*PHARMACISTS))]
OUTCOMES = ("received", "damaged", "missing")
OUTCOME_PREFIX = "outcome."


@router.get("/pharmacy", response_class=HTMLResponse)
def pharmacy(
    request: Request,
    actor: Pharmacy,
    db: DB,
    study: StudyDep,
    site_id: str | None = None,
    show: Literal["on_hand", "dispensed"] = "on_hand",
) -> Response:
    """One site's totals and its kits on hand (or, when asked, those dispensed): number, status,
    expiry; a selector for the user's sites."""
    with db.read() as session:
        choices = [s["site_id"] for s in sites.list_sites(session, actor)]
        chosen = site_id or (choices[0] if choices else None)
        stock = (
            inventory.site_inventory(
                session,
                study=study,
                actor=actor,
                site_id=chosen,
                today=utcnow().date(),
                statuses=(KitStatus.DISPENSED,) if show == "dispensed" else inventory.ON_HAND,
            )
            if chosen
            else None
        )
    return render(
        request,
        "pharmacy/inventory.html",
        title="Pharmacy",
        sites=choices,
        stock=stock,
        show=show,
    )


@router.get("/pharmacy/shipments", response_class=HTMLResponse)
def shipment_list(
    request: Request, actor: Pharmacy, db: DB, site_id: str | None = None
) -> Response:
    with db.read() as session:
        rows = shipments.list_shipments(session, actor=actor, site_id=site_id or None)
    return render(request, "pharmacy/shipments.html", title="Shipments", shipments=rows)


def _receipt_page(
    request: Request, *, db: DB, actor: Actor, shipment_id: int, form: FormState | None = None
) -> Response:
    with db.read() as session:
        shipment = shipments.shipment_view(
            session, shipments.get_shipment(session, actor=actor, shipment_id=shipment_id)
        )
    return render_form(
        request,
        "pharmacy/receive.html",
        form=form,
        defaults={"received_on": utcnow().date().isoformat()},
        title=f"Shipment {shipment_id}",
        shipment=shipment,
        outcomes=OUTCOMES,
        prefix=OUTCOME_PREFIX,
    )


def _parse_receipt(form: FormData) -> tuple[dict[str, str], FormErrors, ReceiveIn | None]:
    """The form as the API's body: a radio `outcome.<kit>` per kit (only damaged and missing
    count), the excursion checkbox and the receipt date (empty: today)."""
    values = form_values(form)
    errors = FormErrors()
    chosen: dict[str, list[str]] = {"damaged": [], "missing": []}
    for name, value in values.items():
        if not name.startswith(OUTCOME_PREFIX):
            continue
        if value not in OUTCOMES:
            errors.add(name, "choose received, damaged or missing")
        elif value != "received":
            chosen[value].append(name.removeprefix(OUTCOME_PREFIX))
    body = {
        **chosen,
        "temperature_excursion": checkbox(form, "temperature_excursion"),
        "received_on": blank_to_none(values.get("received_on")),
    }
    try:
        parsed = ReceiveIn.model_validate(body)
    except ValidationError as exc:
        for name, message in errors_from_validation(exc).fields.items():
            errors.add(name, message)
        return values, errors, None
    return values, errors, None if errors else parsed


@router.get("/pharmacy/shipments/{shipment_id}/receive", response_class=HTMLResponse)
def receipt_form(request: Request, shipment_id: RowId, actor: Pharmacy, db: DB) -> Response:
    """The receipt form of a shipped shipment; afterwards, what was received."""
    return _receipt_page(request, db=db, actor=actor, shipment_id=shipment_id)


@router.post("/pharmacy/shipments/{shipment_id}/receive/review", response_class=HTMLResponse)
def receipt_review(
    request: Request, shipment_id: RowId, actor: Pharmacy, form: Form, db: DB
) -> Response:
    """What the receipt will record, checked by the service's rules and changing nothing;
    "Confirm receipt" records it, "Change" goes back to the form as entered."""
    values, errors, body = _parse_receipt(form)
    if form.get("action") == "edit":
        return _receipt_page(
            request, db=db, actor=actor, shipment_id=shipment_id, form=FormState(values)
        )
    if body is None:
        refused = FormState(values, errors, 422)
        return _receipt_page(request, db=db, actor=actor, shipment_id=shipment_id, form=refused)
    try:
        with db.read() as session:
            review = shipments.review_receipt(
                session, actor=actor, shipment_id=shipment_id, receipt=body.to_receipt()
            )
    except DomainError as exc:
        refused = refused_form(exc, values)
        return _receipt_page(request, db=db, actor=actor, shipment_id=shipment_id, form=refused)
    outcomes = {f"{OUTCOME_PREFIX}{n}": "damaged" for n in review["damaged"]}
    outcomes |= {f"{OUTCOME_PREFIX}{n}": "missing" for n in review["missing"]}
    return render(
        request,
        "pharmacy/receive_review.html",
        title=f"Review the receipt of shipment {shipment_id}",
        review=review,
        shipment=review["shipment"],
        outcomes=outcomes,
    )


@router.post("/pharmacy/shipments/{shipment_id}/receive", response_class=HTMLResponse)
def receive(
    request: Request, shipment_id: RowId, actor: Pharmacy, form: Form, db: DB, study: StudyDep
) -> Response:
    """Record the receipt: each kit received unless marked damaged or missing; a temperature
    excursion quarantines every received kit; dated `received_on` (default today). The same
    use case as POST /api/v1/shipments/{id}/receive."""
    values, errors, body = _parse_receipt(form)
    if body is None:
        refused = FormState(values, errors, 422)
        return _receipt_page(request, db=db, actor=actor, shipment_id=shipment_id, form=refused)
    try:
        commands.receive_shipment(
            db=db, study=study, actor=actor, shipment_id=shipment_id, receipt=body.to_receipt()
        )
    except DomainError as exc:
        refused = refused_form(exc, values)
        return _receipt_page(request, db=db, actor=actor, shipment_id=shipment_id, form=refused)
    return see_other(f"/pharmacy/shipments/{shipment_id}/receive")


# --- kit replacement ----------------------------------------------------------------------------

REPLACE_STATUSES = [("damaged", "Damaged"), ("lost", "Lost")]


def _replace_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    subject_id: int,
    kit_number: str,
    form: FormState | None = None,
) -> Response:
    with db.read() as session:
        subject = get_visible_subject(session, actor=actor, subject_id=subject_id)
        screening_number, site_id = subject.screening_number, subject.site_id
    return render_form(
        request,
        "pharmacy/replace.html",
        form=form,
        defaults={"idempotency_key": new_idempotency_key()},
        title=f"Replace kit {kit_number}",
        subject_id=subject_id,
        screening_number=screening_number,
        site_id=site_id,
        kit_number=kit_number,
        statuses=REPLACE_STATUSES,
    )


@router.get("/subjects/{subject_id}/kits/{kit_number}/replace", response_class=HTMLResponse)
def replace_form(
    request: Request, subject_id: RowId, kit_number: str, actor: Pharmacist, db: DB
) -> Response:
    """A damaged or lost dispensed kit: the reason, then a new kit of the same content."""
    return _replace_page(request, db=db, actor=actor, subject_id=subject_id, kit_number=kit_number)


@router.post("/subjects/{subject_id}/kits/{kit_number}/replace", response_class=HTMLResponse)
def replace(
    request: Request,
    subject_id: RowId,
    kit_number: str,
    actor: Pharmacist,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    """The API's replacement, with the form's one-time key: a double submit replaces once."""
    values = form_values(form)
    try:
        body = ReplaceIn.model_validate(
            {"reason": values.get("reason", ""), "status": values.get("status", "")}
        )
    except ValidationError as exc:
        refused = FormState(values, errors_from_validation(exc), 422)
        return _replace_page(
            request, db=db, actor=actor, subject_id=subject_id, kit_number=kit_number, form=refused
        )
    try:
        result = commands.replace_kit(
            db=db,
            study=study,
            actor=actor,
            retry=commands.Retry(
                key=values.get("idempotency_key") or new_idempotency_key(),
                lease_seconds=settings.idempotency_lease_seconds,
            ),
            subject_id=subject_id,
            kit_number=kit_number,
            status=KitStatus(body.status),
            reason=body.reason,
        ).result
    except DomainError as exc:
        refused = refused_form(exc, values)
        return _replace_page(
            request, db=db, actor=actor, subject_id=subject_id, kit_number=kit_number, form=refused
        )
    return see_other(f"/confirmations/{result.confirmation_id}")
