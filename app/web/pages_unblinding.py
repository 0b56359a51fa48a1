"""Emergency unblinding by an investigator: the form, which asks for the reason and the
subject's screening number typed again, and the submit, which calls the same use case as the
API (app/services/commands.py). A double submit shows the first unblinding's confirmation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.problems import status_of
from app.api.schemas import UnblindIn
from app.domain.errors import DomainError
from app.domain.roles import INVESTIGATORS
from app.domain.signatures import unblinding_meaning
from app.services import commands, confirmations
from app.services.actor import Actor
from app.services.emergency_unblinding import REASON_CATEGORIES
from app.web.forms import (
    Form,
    FormErrors,
    FormState,
    errors_from_service,
    errors_from_validation,
    form_text,
    form_values,
    present,
    render_form,
    without_passwords,
)
from app.web.pages_subjects import subject_view
from app.web.rendering import see_other
from app.web.session import page_actor

router = APIRouter()

Investigator = Annotated[Actor, Depends(page_actor(*INVESTIGATORS))]
CATEGORY_LABELS = {
    "adverse_event": "Adverse event",
    "overdose": "Overdose",
    "pregnancy": "Pregnancy",
    "other": "Other",
}


def _unblind_page(request: Request, *, subject: dict[str, Any], form: FormState) -> Response:
    categories = [(c, CATEGORY_LABELS.get(c, c)) for c in REASON_CATEGORIES]
    title = f"Emergency unblinding of subject {subject['screening_number']}"
    meaning = unblinding_meaning(
        screening_number=subject["screening_number"], site_id=subject["site_id"]
    )
    return render_form(
        request,
        "subjects/unblind.html",
        form=form,
        title=title,
        subject=subject,
        categories=categories,
        meaning=meaning,
    )


@router.get("/subjects/{subject_id}/unblind")
def unblind_form(request: Request, subject_id: RowId, actor: Investigator, db: DB) -> Response:
    return _unblind_page(request, subject=subject_view(db, actor, subject_id), form=FormState())


@router.post("/subjects/{subject_id}/unblind")
def unblind_submit(
    request: Request,
    subject_id: RowId,
    actor: Investigator,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    """Break the blind for this subject once the investigator typed its screening number and
    signed with their password under the meaning shown."""
    subject = subject_view(db, actor, subject_id)
    values = without_passwords(form_values(form))
    errors = FormErrors()
    signature = present(
        {
            "password": form.get("signature.password") or None,
            "meaning": form_text(form, "signature.meaning"),
        }
    )
    try:
        body = UnblindIn.model_validate(
            present({name: form_text(form, name) for name in ("reason_category", "reason")})
            | {"signature": signature}
        )
    except ValidationError as exc:
        body = None
        errors = errors_from_validation(exc)
    typed = form_text(form, "confirm_screening_number") or ""
    if typed != subject["screening_number"]:
        errors.add(
            "confirm_screening_number",
            "type the subject's screening number exactly as shown to confirm the unblinding",
        )
    if body is None or errors:
        return _unblind_page(request, subject=subject, form=FormState(values, errors, 422))
    try:
        result = commands.unblind(
            db=db,
            study=study,
            actor=actor,
            subject_id=subject_id,
            reason_category=body.reason_category,
            reason=body.reason,
            settings=settings,
            signature=body.signature.given(),
        )
    except DomainError as exc:
        earlier = (
            _own_unblinding(db, actor, subject_id) if exc.code == "already_unblinded" else None
        )
        if earlier is not None:  # a double submit: show the first one's confirmation
            return see_other(f"/confirmations/{earlier}")
        refused = FormState(values, errors_from_service(exc), status_of(exc))
        return _unblind_page(request, subject=subject, form=refused)
    return see_other(f"/confirmations/{result.confirmation_id}")


def _own_unblinding(db: DB, actor: Actor, subject_id: int) -> int | None:
    with db.read() as session:
        for row in confirmations.list_visible(session, actor=actor, subject_id=subject_id):
            if row.kind == "unblinding" and row.created_by == actor.username:
                return row.id
    return None
