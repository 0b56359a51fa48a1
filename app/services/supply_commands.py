"""The supply manager's use cases: shipments (request, ship, cancel), quarantine decisions and
supply levels, called by the API (app/api/supply.py) and the supply pages alike.

Each one owns its unit of work (`writing`, or `db.read()` for the shipment view) and answers a
typed, blinded result (app/services/results.py): never a content, a lot or a per-content count.
The receipt of a shipment at the site is `commands.receive_shipment`.
"""

from __future__ import annotations

from app.db.engine import Database
from app.domain.errors import Conflict
from app.domain.kits import KitStatus
from app.domain.reasons import check_reason
from app.domain.study import StudyDefinition
from app.services import attempts, inventory, shipments, sites
from app.services.actor import Actor
from app.services.kits import get_kit
from app.services.results import KitOut, ShipmentOut, SupplyLevelsOut
from app.services.resupply import request_manual
from app.services.transaction import utcnow, writing


def get_shipment(*, db: Database, actor: Actor, shipment_id: int) -> ShipmentOut:
    """One shipment with its kits, if the actor sees its site (else 404)."""
    with db.read() as session:
        shipment = shipments.get_shipment(session, actor=actor, shipment_id=shipment_id)
        view = shipments.shipment_view(session, shipment)
    return ShipmentOut.model_validate(view)


def request_shipment(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    kits_per_content: int,
    reason: str,
) -> ShipmentOut:
    """A manual shipment: the same number of kits of each content (so it reveals nothing)."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="shipment.manual_refused",
            entity="site",
            entity_id=site_id,
            sent={"kits_per_content": kits_per_content, "reason": reason},
        ),
        writing(db) as session,
    ):
        shipment = request_manual(
            session,
            study=study,
            actor=actor,
            site_id=site_id,
            kits_per_content=kits_per_content,
            reason=reason,
            today=utcnow().date(),
        )
        view = shipments.shipment_view(session, shipment)
    return ShipmentOut.model_validate(view)


def ship_shipment(
    *, db: Database, study: StudyDefinition, actor: Actor, shipment_id: int
) -> ShipmentOut:
    """The depot sends a requested shipment: its kits go in transit to the site."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="shipment.ship_refused",
            entity="shipment",
            entity_id=shipment_id,
            sent={},
        ),
        writing(db) as session,
    ):
        view = shipments.ship(
            session, study=study, actor=actor, shipment_id=shipment_id, today=utcnow().date()
        )
    return ShipmentOut.model_validate(view)


def cancel_shipment(*, db: Database, actor: Actor, shipment_id: int, reason: str) -> ShipmentOut:
    """A requested shipment is not sent: its kits stay at the depot."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="shipment.cancel_refused",
            entity="shipment",
            entity_id=shipment_id,
            sent={"reason": reason},
        ),
        writing(db) as session,
    ):
        view = shipments.cancel(session, actor=actor, shipment_id=shipment_id, reason=reason)
    return ShipmentOut.model_validate(view)


def resolve_quarantine(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    shipment_id: int,
    release: bool,
    reason: str,
) -> ShipmentOut:
    """Release (kits available again) or reject (kits damaged) a quarantined shipment."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="shipment.release_refused" if release else "shipment.reject_refused",
            entity="shipment",
            entity_id=shipment_id,
            sent={"release": release, "reason": reason},
        ),
        writing(db) as session,
    ):
        view = shipments.resolve_quarantine(
            session,
            study=study,
            actor=actor,
            shipment_id=shipment_id,
            release=release,
            reason=reason,
        )
    return ShipmentOut.model_validate(view)


def resolve_kit_quarantine(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    kit_number: str,
    release: bool,
    reason: str,
) -> KitOut:
    """Release one quarantined kit (back to available at a site, to the depot's stock at a
    depot) or reject it as damaged. A kit no longer quarantined (decided already, e.g. in
    another tab) is refused: nothing is changed."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="kit.resolve_quarantine_refused",
            entity="kit",
            entity_id=kit_number,
            sent={"release": release, "reason": reason},
        ),
        writing(db) as session,
    ):
        reason = check_reason(reason)
        kit = get_kit(session, kit_number=kit_number, actor=actor)
        if kit.status != KitStatus.QUARANTINED.value:
            raise Conflict(
                "not_quarantined",
                f"Kit {kit_number} is {kit.status.replace('_', ' ')}, no longer quarantined; "
                "nothing was changed.",
            )
        home = KitStatus.AVAILABLE if kit.site_id is not None else KitStatus.AT_DEPOT
        view = inventory.change_status(
            session,
            study=study,
            actor=actor,
            kit_number=kit_number,
            target=home if release else KitStatus.DAMAGED,
            reason=reason,
            today=utcnow().date(),
        )
    return KitOut.model_validate(view)


def set_supply_levels(
    *, db: Database, study: StudyDefinition, actor: Actor, site_id: str, trigger: int, target: int
) -> SupplyLevelsOut:
    """A site's own resupply trigger and target, the same for every content."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="site.supply_levels_refused",
            entity="site",
            entity_id=site_id,
            sent={"trigger": trigger, "target": target},
        ),
        writing(db) as session,
    ):
        levels = sites.set_levels(
            session, study=study, actor=actor, site_id=site_id, trigger=trigger, target=target
        )
    return SupplyLevelsOut.model_validate(levels)
