"""Confirmations of randomizations, dispensings, replacements and unblindings (site roles, own
sites; always the blinded variant: the unblinded one is only a page, see docs/web.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.api.deps import DB, MAX_ID, RowId, require
from app.api.schemas import ConfirmationOut
from app.domain.roles import SITE_STAFF
from app.services import confirmations
from app.services.actor import Actor

router = APIRouter(prefix="/confirmations", tags=["confirmations"])

SiteStaff = Annotated[Actor, Depends(require(*SITE_STAFF))]


@router.get("", response_model=list[ConfirmationOut])
def list_confirmations(
    actor: SiteStaff,
    db: DB,
    site_id: Annotated[str | None, Query(max_length=12)] = None,
    subject_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    """The newest confirmations of the user's sites first (at most 500)."""
    with db.read() as session:
        rows = confirmations.list_visible(
            session, actor=actor, site_id=site_id, subject_id=subject_id
        )
        return [confirmations.view(row) for row in rows]


@router.get("/{confirmation_id}", response_model=ConfirmationOut)
def get_confirmation(confirmation_id: RowId, actor: SiteStaff, db: DB) -> Any:
    with db.read() as session:
        return confirmations.view(
            confirmations.get_visible(session, actor=actor, confirmation_id=confirmation_id)
        )
