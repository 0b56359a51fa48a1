"""Shipments from a depot to a site: request (kits picked), ship, receive, quarantine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Kit, Shipment, ShipmentKit
from app.domain.dates import latest_today
from app.domain.errors import Conflict, InvalidInput, not_found, validation_error
from app.domain.kits import KitCandidate, KitStatus, usable_on
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.kits import blinded_kit, move
from app.services.locks import lock_site
from app.services.resupply import check_site
from app.services.transaction import utcnow


def get_shipment(
    session: Session, *, actor: Actor, shipment_id: int, lock: bool = False
) -> Shipment:
    query = select(Shipment).where(Shipment.id == shipment_id)
    shipment = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if shipment is None or not actor.sees_site(shipment.site_id):
        raise not_found(f"Shipment {shipment_id}")
    return shipment


def _shipment_in_state(
    session: Session,
    *,
    actor: Actor,
    shipment_id: int,
    status: str,
    action: str,
    lock_site_first: bool = False,
) -> Shipment:
    """The shipment, locked, if it is in `status`; else 409 naming what it is. Changes to a
    site's stock lock the site row first (lock order: study, site, depot)."""
    if lock_site_first:
        lock_site(session, get_shipment(session, actor=actor, shipment_id=shipment_id).site_id)
    shipment = get_shipment(session, actor=actor, shipment_id=shipment_id, lock=True)
    _require_state(shipment=shipment, status=status, action=action)
    return shipment


def _require_state(*, shipment: Shipment, status: str, action: str) -> None:
    if shipment.status != status:
        raise Conflict(
            "invalid_shipment_state",
            f"Shipment {shipment.id} is {shipment.status}; only a {status} shipment can be "
            f"{action}.",
        )


def shipment_kits(session: Session, shipment: Shipment) -> list[tuple[Kit, str | None]]:
    rows = session.execute(
        select(Kit, ShipmentKit.outcome)
        .join(ShipmentKit, ShipmentKit.kit_number == Kit.kit_number)
        .where(ShipmentKit.shipment_id == shipment.id)
        .order_by(Kit.kit_number)
    ).all()
    return [(kit, outcome) for kit, outcome in rows]


def ship(
    session: Session, *, study: StudyDefinition, actor: Actor, shipment_id: int, today: date
) -> dict[str, Any]:
    """The depot sends a requested shipment: its kits go in transit to the site."""
    shipment = _shipment_in_state(
        session, actor=actor, shipment_id=shipment_id, status="requested", action="shipped"
    )
    pools = dict(
        session.execute(
            select(ShipmentKit.kit_number, ShipmentKit.pool).where(
                ShipmentKit.shipment_id == shipment.id
            )
        ).all()
    )
    for kit, _ in shipment_kits(session, shipment):
        if not usable_on(
            KitCandidate(kit.kit_number, kit.content, kit.expiry_date),
            today,
            study.supply.do_not_ship_days,
        ):
            raise Conflict(
                "kit_too_close_to_expiry",
                f"Kit {kit.kit_number} may no longer be shipped (do-not-ship "
                "window); cancel this shipment and request a new one.",
            )
        move(
            session,
            actor=actor,
            kit=kit,
            target=KitStatus.IN_TRANSIT,
            by="system",
            reason=None,
            shipment_id=shipment.id,
        )
        kit.site_id, kit.shipment_id = shipment.site_id, shipment.id
        kit.pool = pools[kit.kit_number]  # the stage pool it was picked for
    before = {"status": shipment.status}
    shipment.status, shipment.shipped_at = "shipped", utcnow()
    audit.record(
        session,
        actor=actor,
        action="shipment.ship",
        entity="shipment",
        entity_id=shipment.id,
        before=before,
        after={"status": "shipped"},
    )
    return shipment_view(session, shipment)


def cancel(session: Session, *, actor: Actor, shipment_id: int, reason: str) -> dict[str, Any]:
    reason = check_reason(reason)
    shipment = _shipment_in_state(
        session, actor=actor, shipment_id=shipment_id, status="requested", action="cancelled"
    )
    shipment.status = "cancelled"
    audit.record(
        session,
        actor=actor,
        action="shipment.cancel",
        entity="shipment",
        entity_id=shipment.id,
        before={"status": "requested"},
        after={"status": "cancelled"},
        reason=reason,
    )
    return shipment_view(session, shipment)


@dataclass(frozen=True)
class Receipt:
    """What the site records of a shipment's arrival: the kits damaged and missing (every other
    kit is received), a temperature excursion, and the day it arrived (default today, UTC)."""

    damaged: Sequence[str] = ()
    missing: Sequence[str] = ()
    temperature_excursion: bool = False
    received_on: date | None = None


def _check_receipt(
    *, shipment: Shipment, kits: list[tuple[Kit, str | None]], receipt: Receipt
) -> date:
    """Refuse a kit not in the shipment, a kit both damaged and missing, and a receipt date
    after today (anywhere on earth) or before the (UTC) day the shipment was shipped; returns
    the receipt date (today, UTC, when none is given)."""
    damaged, missing = set(receipt.damaged), set(receipt.missing)
    numbers = {kit.kit_number for kit, _ in kits}
    unknown = sorted((damaged | missing) - numbers)
    both = sorted(damaged & missing)
    if unknown or both:
        problems = [f"kit {n} is not in shipment {shipment.id}" for n in unknown]
        problems += [f"kit {n} cannot be both damaged and missing" for n in both]
        raise InvalidInput(
            "validation_error",
            "; ".join(problems) + ".",
            errors=[{"field": "kits", "message": p} for p in problems],
        )
    now = utcnow()
    day = receipt.received_on or now.date()
    if day > latest_today(now):
        raise validation_error("received_on", f"The receipt date {day} is in the future.")
    shipped = shipment.shipped_at.date() if shipment.shipped_at else None
    if shipped is not None and day < shipped:
        raise validation_error(
            "received_on",
            f"The receipt date {day} is before the shipment was shipped ({shipped}).",
        )
    return day


def review_receipt(
    session: Session, *, actor: Actor, shipment_id: int, receipt: Receipt
) -> dict[str, Any]:
    """What `receive` would record, checked by the same rules and changing nothing (the review
    step of the receipt page): kits received, damaged and missing, excursion, receipt date."""
    shipment = get_shipment(session, actor=actor, shipment_id=shipment_id)
    _require_state(shipment=shipment, status="shipped", action="received")
    kits = shipment_kits(session, shipment)
    day = _check_receipt(shipment=shipment, kits=kits, receipt=receipt)
    exceptions = set(receipt.damaged) | set(receipt.missing)
    return {
        "shipment": shipment_view(session, shipment),
        "received": [kit.kit_number for kit, _ in kits if kit.kit_number not in exceptions],
        "damaged": sorted(set(receipt.damaged)),
        "missing": sorted(set(receipt.missing)),
        "temperature_excursion": receipt.temperature_excursion,
        "received_on": day.isoformat(),
    }


def receive(
    session: Session, *, study: StudyDefinition, actor: Actor, shipment_id: int, receipt: Receipt
) -> dict[str, Any]:
    """Receipt at the site: each kit received, damaged or missing; an excursion quarantines
    the whole shipment until the supply manager releases or rejects it. The receipt's date is
    never in the future, never before the shipping day; `received_at` stays the time it was
    recorded."""
    shipment = _shipment_in_state(
        session,
        actor=actor,
        shipment_id=shipment_id,
        status="shipped",
        action="received",
        lock_site_first=True,
    )
    kits = shipment_kits(session, shipment)
    day = _check_receipt(shipment=shipment, kits=kits, receipt=receipt)
    damaged, missing = set(receipt.damaged), set(receipt.missing)
    temperature_excursion = receipt.temperature_excursion
    for kit, _ in kits:
        if kit.kit_number in missing:
            outcome, target = "missing", KitStatus.LOST
        elif kit.kit_number in damaged:
            outcome, target = "damaged", KitStatus.DAMAGED
        else:
            outcome = "received"
            target = KitStatus.QUARANTINED if temperature_excursion else KitStatus.AVAILABLE
        move(
            session,
            actor=actor,
            kit=kit,
            target=target,
            by="system",
            reason=None,
            shipment_id=shipment.id,
            outcome=outcome,
        )
        link = session.get(ShipmentKit, (shipment.id, kit.kit_number))
        assert link is not None
        link.outcome = outcome
    before = {"status": shipment.status}
    shipment.status = "quarantined" if temperature_excursion else "received"
    shipment.received_at, shipment.received_by = utcnow(), actor.username
    shipment.received_on = day
    shipment.temperature_excursion = temperature_excursion
    audit.record(
        session,
        actor=actor,
        action="shipment.receive",
        entity="shipment",
        entity_id=shipment.id,
        before=before,
        after={
            "status": shipment.status,
            "received_on": day.isoformat(),
            "temperature_excursion": temperature_excursion,
            "damaged": sorted(damaged),
            "missing": sorted(missing),
        },
    )
    _resupply(session, study=study, actor=actor, site_id=shipment.site_id)
    return shipment_view(session, shipment)


def resolve_quarantine(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    shipment_id: int,
    release: bool,
    reason: str,
) -> dict[str, Any]:
    """Release (kits become available) or reject (kits damaged) a quarantined shipment."""
    reason = check_reason(reason)
    shipment = _shipment_in_state(
        session,
        actor=actor,
        shipment_id=shipment_id,
        status="quarantined",
        action="released or rejected",
        lock_site_first=True,
    )
    target = KitStatus.AVAILABLE if release else KitStatus.DAMAGED
    for kit, _ in shipment_kits(session, shipment):
        if kit.status == KitStatus.QUARANTINED.value:
            move(
                session,
                actor=actor,
                kit=kit,
                target=target,
                by=str(actor.role),
                reason=reason,
                shipment_id=shipment.id,
            )
    shipment.status = "received" if release else "rejected"
    audit.record(
        session,
        actor=actor,
        action="shipment.release" if release else "shipment.reject",
        entity="shipment",
        entity_id=shipment.id,
        before={"status": "quarantined"},
        after={"status": shipment.status},
        reason=reason,
    )
    _resupply(session, study=study, actor=actor, site_id=shipment.site_id)
    return shipment_view(session, shipment)


def shipment_view(session: Session, shipment: Shipment) -> dict[str, Any]:
    """Blinded: kit numbers, statuses and expiry; never content, lot or per-content counts."""
    kits = shipment_kits(session, shipment)
    return {
        "shipment_id": shipment.id,
        "site_id": shipment.site_id,
        "depot_id": shipment.depot_id,
        "kind": shipment.kind,
        "status": shipment.status,
        "requested_at": iso_utc(shipment.requested_at),
        "shipped_at": iso_utc(shipment.shipped_at) if shipment.shipped_at else None,
        "received_at": iso_utc(shipment.received_at) if shipment.received_at else None,
        "received_on": shipment.received_on.isoformat() if shipment.received_on else None,
        "temperature_excursion": shipment.temperature_excursion,
        "kit_count": len(kits),
        "kits": [{**blinded_kit(kit), "outcome": outcome} for kit, outcome in kits],
    }


def list_shipments(
    session: Session, *, actor: Actor, site_id: str | None, status: str | None = None
) -> list[dict[str, Any]]:
    query = select(Shipment).order_by(Shipment.id)
    if site_id:
        query = query.where(Shipment.site_id == site_id)
    if status:
        query = query.where(Shipment.status == status)
    return [
        shipment_view(session, s)
        for s in session.execute(query).scalars()
        if actor.sees_site(s.site_id)
    ]


def _resupply(session: Session, *, study: StudyDefinition, actor: Actor, site_id: str) -> None:
    check_site(
        session, study=study, actor=actor, site=lock_site(session, site_id), today=utcnow().date()
    )
