"""Confirmations: the list of the user's sites and the printable page (one A4 sheet). The
treatment shows only to who may see it (`confirmations.may_see_treatment`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.deps import DB, RowId
from app.domain.roles import CONFIRMATION_READERS
from app.services import confirmations, unblinded_reads
from app.services.actor import Actor
from app.web.rendering import render
from app.web.session import page_actor

router = APIRouter()

Reader = Annotated[Actor, Depends(page_actor(*CONFIRMATION_READERS))]


@router.get("/confirmations")
def confirmation_list(request: Request, actor: Reader, db: DB) -> Response:
    with db.read() as session:
        rows = [confirmations.view(row) for row in confirmations.list_visible(session, actor=actor)]
    return render(request, "confirmations/list.html", title="Confirmations", rows=rows)


@router.get("/confirmations/{confirmation_id}")
def confirmation_page(request: Request, confirmation_id: RowId, actor: Reader, db: DB) -> Response:
    confirmation, unblinded = unblinded_reads.confirmation(
        db=db, actor=actor, confirmation_id=confirmation_id
    )
    return render(
        request,
        "confirmations/detail.html",
        title=confirmation["title"],
        c=confirmation,
        unblinded=unblinded,
    )
