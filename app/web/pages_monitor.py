"""Unblinded monitor pages: allocations, the unblinding log, the audit trail and its check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, MAX_ID, StudyDep
from app.domain.roles import UNBLINDED_MONITORS
from app.services import audit, audit_integrity, checkpoints, unblinded_reads
from app.services.actor import Actor
from app.web.rendering import render
from app.web.session import page_actor

router = APIRouter()

Monitor = Annotated[Actor, Depends(page_actor(*UNBLINDED_MONITORS))]
AUDIT_PAGE = 100


@router.get("/monitor/allocations", response_class=HTMLResponse)
def allocations(request: Request, actor: Monitor, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.allocations(db=db, study=study, actor=actor)
    return render(request, "monitor/allocations.html", title="Allocations", rows=rows)


@router.get("/monitor/unblindings", response_class=HTMLResponse)
def unblindings(request: Request, actor: Monitor, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.unblinding_log(db=db, study=study, actor=actor)
    return render(
        request,
        "reports/unblindings.html",
        title="Unblindings",
        rows=rows,
        with_treatment=True,
    )


def _audit_page(
    request: Request,
    *,
    db: DB,
    after_seq: int,
    verify: bool,
    partial: bool = False,
    username: str | None = None,
    action: str | None = None,
) -> Response:
    with db.read() as session:
        report = (
            audit_integrity.summary(
                audit_integrity.verify_all(session, checkpoint_log=checkpoints.log_of(db))
            )
            if verify
            else None
        )
        entries = (
            []
            if partial
            else audit.entries_after(
                session, after_seq=after_seq, limit=AUDIT_PAGE, username=username, action=action
            )
        )
    template = "monitor/_verify.html" if partial else "monitor/audit.html"
    return render(
        request,
        template,
        title="Audit trail",
        entries=entries,
        after_seq=after_seq,
        page_size=AUDIT_PAGE,
        filters={"username": username or "", "action": action or ""},
        report=report,
        checkpoints=audit_integrity.checkpoints_view(db, count=5),
    )


AfterSeq = Annotated[int, Query(ge=0, le=MAX_ID)]
Filter = Annotated[str | None, Query(max_length=80)]


@router.get("/monitor/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    actor: Monitor,
    db: DB,
    after_seq: AfterSeq = 0,
    username: Filter = None,
    action: Filter = None,
) -> Response:
    """The audit trail, a page of entries at a time; only one user's or one action's when
    asked, as `GET /api/v1/admin/audit` filters (a refused attempt is found this way)."""
    return _audit_page(
        request,
        db=db,
        after_seq=after_seq,
        verify=False,
        username=username or None,
        action=action or None,
    )


@router.get("/monitor/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, actor: Monitor, db: DB, after_seq: AfterSeq = 0) -> Response:
    """Recompute the hash chain: the result alone for HTMX, else the page with the result."""
    partial = request.headers.get("HX-Request") == "true"
    return _audit_page(request, db=db, after_seq=after_seq, verify=True, partial=partial)
