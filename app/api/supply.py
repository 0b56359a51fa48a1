"""Drug supply for pharmacists and supply managers: inventory, shipments, kit status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.api.deps import DB, RowId, StudyDep, require
from app.api.schemas import (
    DepotStockOut,
    InventoryOut,
    KitStatusIn,
    ReasonIn,
    ReceiveIn,
    ShipmentRequestIn,
    SupplyLevelsIn,
)
from app.domain.kits import KitStatus
from app.domain.roles import DEPOT_READERS, PHARMACY, SUPPLY_MANAGERS
from app.services import commands, depots, inventory, shipments, supply_commands
from app.services.actor import Actor
from app.services.kits import blinded_kit, get_kit
from app.services.results import KitOut, ShipmentOut, SupplyLevelsOut
from app.services.transaction import utcnow, writing

router = APIRouter(tags=["supply"])

Pharmacy = Annotated[Actor, Depends(require(*PHARMACY))]
Supply = Annotated[Actor, Depends(require(*SUPPLY_MANAGERS))]
DepotReaders = Annotated[Actor, Depends(require(*DEPOT_READERS))]


@router.get("/sites/{site_id}/inventory", response_model=InventoryOut)
def site_inventory(
    site_id: str,
    actor: Pharmacy,
    db: DB,
    study: StudyDep,
    status: Annotated[
        list[KitStatus] | None,
        Query(description="The statuses of the kits to list; every one but dispensed if none"),
    ] = None,
) -> Any:
    """Totals over every kit the site holds or held; the kits of the statuses asked for."""
    with db.read() as session:
        return inventory.site_inventory(
            session,
            study=study,
            actor=actor,
            site_id=site_id,
            today=utcnow().date(),
            statuses=status or inventory.ON_HAND,
        )


@router.put("/sites/{site_id}/supply-levels", response_model=SupplyLevelsOut)
def supply_levels(
    site_id: str, body: SupplyLevelsIn, actor: Supply, db: DB, study: StudyDep
) -> Any:
    return supply_commands.set_supply_levels(
        db=db, study=study, actor=actor, site_id=site_id, trigger=body.trigger, target=body.target
    )


@router.get("/shipments", response_model=list[ShipmentOut])
def list_shipments(actor: Pharmacy, db: DB, site_id: str | None = None) -> Any:
    with db.read() as session:
        return shipments.list_shipments(session, actor=actor, site_id=site_id)


@router.post("/shipments", status_code=201, response_model=ShipmentOut)
def request(body: ShipmentRequestIn, actor: Supply, db: DB, study: StudyDep) -> Any:
    """A manual shipment: the same number of kits of each content (so it reveals nothing)."""
    return supply_commands.request_shipment(
        db=db,
        study=study,
        actor=actor,
        site_id=body.site_id,
        kits_per_content=body.kits_per_content,
        reason=body.reason,
    )


@router.get("/shipments/{shipment_id}", response_model=ShipmentOut)
def get_shipment(shipment_id: RowId, actor: Pharmacy, db: DB) -> Any:
    return supply_commands.get_shipment(db=db, actor=actor, shipment_id=shipment_id)


@router.post("/shipments/{shipment_id}/ship", response_model=ShipmentOut)
def ship(shipment_id: RowId, actor: Supply, db: DB, study: StudyDep) -> Any:
    return supply_commands.ship_shipment(db=db, study=study, actor=actor, shipment_id=shipment_id)


@router.post("/shipments/{shipment_id}/cancel", response_model=ShipmentOut)
def cancel(shipment_id: RowId, body: ReasonIn, actor: Supply, db: DB) -> Any:
    return supply_commands.cancel_shipment(
        db=db, actor=actor, shipment_id=shipment_id, reason=body.reason
    )


@router.post("/shipments/{shipment_id}/receive", response_model=ShipmentOut)
def receive(shipment_id: RowId, body: ReceiveIn, actor: Pharmacy, db: DB, study: StudyDep) -> Any:
    return commands.receive_shipment(
        db=db, study=study, actor=actor, shipment_id=shipment_id, receipt=body.to_receipt()
    )


@router.post("/shipments/{shipment_id}/release", response_model=ShipmentOut)
def release(shipment_id: RowId, body: ReasonIn, actor: Supply, db: DB, study: StudyDep) -> Any:
    return supply_commands.resolve_quarantine(
        db=db, study=study, actor=actor, shipment_id=shipment_id, release=True, reason=body.reason
    )


@router.post("/shipments/{shipment_id}/reject", response_model=ShipmentOut)
def reject(shipment_id: RowId, body: ReasonIn, actor: Supply, db: DB, study: StudyDep) -> Any:
    return supply_commands.resolve_quarantine(
        db=db, study=study, actor=actor, shipment_id=shipment_id, release=False, reason=body.reason
    )


@router.get("/kits/{kit_number}", response_model=KitOut)
def get_kit_status(kit_number: str, actor: Pharmacy, db: DB) -> Any:
    with db.read() as session:
        return blinded_kit(get_kit(session, kit_number=kit_number, actor=actor))


@router.post("/kits/{kit_number}/status", response_model=KitOut)
def kit_status(kit_number: str, body: KitStatusIn, actor: Pharmacy, db: DB, study: StudyDep) -> Any:
    with writing(db) as session:
        return inventory.change_status(
            session,
            study=study,
            actor=actor,
            kit_number=kit_number,
            target=KitStatus(body.status),
            reason=body.reason,
            today=utcnow().date(),
        )


@router.get("/depots/{depot_id}/stock", response_model=DepotStockOut)
def depot_stock(depot_id: str, actor: DepotReaders, db: DB, study: StudyDep) -> Any:
    """Kits at the depot by status and by expiry date: totals only, never per content."""
    with db.read() as session:
        return depots.depot_stock(session, study=study, depot_id=depot_id, today=utcnow().date())
