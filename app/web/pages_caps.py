"""Sponsor admin pages for amendments: the caps in force, changed through a review step and a
signature (app/services/amendment_commands.py, as the API route `POST /admin/caps`), and the
list of study definition versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.api.deps import DB, SettingsDep
from app.api.problems import status_of
from app.api.schemas import CapsIn
from app.domain import signatures as meanings
from app.domain.errors import DomainError
from app.domain.roles import OVERSIGHT, SPONSOR_ADMINS
from app.services import amendment_commands, caps
from app.services.actor import Actor
from app.web.common import form_retry
from app.web.forms import (
    Form,
    FormState,
    errors_from_service,
    errors_from_validation,
    form_text,
    form_values,
    new_idempotency_key,
    render_form,
    without_passwords,
)
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

Sponsor = Annotated[Actor, Depends(page_actor(*SPONSOR_ADMINS))]
Admin = Annotated[Actor, Depends(page_actor(*OVERSIGHT))]


def _caps_page(
    request: Request, *, db: DB, form: FormState | None = None, done: bool = False
) -> Response:
    with db.read() as session:
        view = caps.caps_view(session)
    defaults = {f"cap.{s.scope}": str(s.cap) for s in view.scopes}
    defaults["idempotency_key"] = new_idempotency_key()
    return render_form(
        request, "admin/caps.html", form=form, defaults=defaults, title="Caps", view=view, done=done
    )


def _asked(values: dict[str, str], view: caps.CapsOut) -> dict[str, int | str]:
    """The caps the form changes (a blank or unchanged field is no change)."""
    asked: dict[str, int | str] = {}
    for s in view.scopes:
        raw = (values.get(f"cap.{s.scope}") or "").strip()
        if raw and raw != str(s.cap):
            asked[s.scope] = int(raw) if raw.isdigit() else raw
    return asked


def _parse(values: dict[str, str], view: caps.CapsOut, *, review: bool = False) -> CapsIn:
    """The form as the API's body; the review is checked before anyone signs."""
    password = values.get("signature.password", "")
    return CapsIn.model_validate(
        {
            "caps": _asked(values, view),
            "reason": values.get("reason", ""),
            "signature": {"password": "not-signed-yet" if review else password},
        }
    )


@router.get("/admin/caps", response_class=HTMLResponse)
def caps_page(request: Request, actor: Sponsor, db: DB, done: str = "") -> Response:
    return _caps_page(request, db=db, done=done == "1")


@router.post("/admin/caps/review", response_class=HTMLResponse)
def caps_review(request: Request, actor: Sponsor, form: Form, db: DB) -> Response:
    """The caps before and after, and the total against the target; nothing is done yet."""
    values = form_values(form)
    if form.get("action") == "move":  # prefill: every unused place of closed cohorts to phase II
        with db.read() as session:
            view = caps.caps_view(session)
        moved = sum(s.unused for s in view.scopes if s.status == "closed" and s.scope != "P2")
        for s in view.scopes:
            if s.status == "closed" and s.scope != "P2":
                values[f"cap.{s.scope}"] = str(s.randomized)
        values["cap.P2"] = str(next(s.cap for s in view.scopes if s.scope == "P2") + moved)
        return _caps_page(request, db=db, form=FormState(values))
    with db.read() as session:
        view = caps.caps_view(session)
    try:
        body = _parse(values, view, review=True)
    except ValidationError as exc:
        errors = errors_from_validation(exc)
        return _caps_page(request, db=db, form=FormState(values, errors, 422))
    after = {s.scope: body.caps.get(s.scope, s.cap) for s in view.scopes}
    return render(
        request,
        "admin/caps_review.html",
        title="Review the caps",
        view=view,
        after=after,
        total=sum(after.values()),
        values=without_passwords(values),
        errors=FormState().errors,
        meaning=meanings.caps_meaning(dict(body.caps)),
    )


@router.post("/admin/caps", response_class=HTMLResponse)
def caps_submit(
    request: Request, actor: Sponsor, form: Form, db: DB, settings: SettingsDep
) -> Response:
    """Signed and submitted once per form (its one-time key)."""
    values = form_values(form)
    with db.read() as session:
        view = caps.caps_view(session)
    try:
        body = _parse(values, view)
    except ValidationError as exc:
        errors = errors_from_validation(exc)
        return _caps_page(request, db=db, form=FormState(without_passwords(values), errors, 422))
    try:
        amendment_commands.change_caps(
            db=db,
            actor=actor,
            retry=form_retry(form_text(form, "idempotency_key"), settings),
            caps_asked=body.caps,
            reason=body.reason,
            settings=settings,
            signature=body.signature.given(),
        )
    except DomainError as exc:
        refused = FormState(without_passwords(values), errors_from_service(exc), status_of(exc))
        return _caps_page(request, db=db, form=refused)
    return see_other("/admin/caps?done=1")


@router.get("/admin/study-versions", response_class=HTMLResponse)
def versions_page(request: Request, actor: Admin, db: DB) -> Response:
    return render(
        request,
        "admin/versions.html",
        title="Study definition versions",
        versions=amendment_commands.list_versions(db=db),
    )
