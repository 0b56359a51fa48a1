"""Subject status pages: screen failure, discontinuation, withdrawal and completion (form,
review, confirm), and the signed undo of the latest change (form, review with the signature).
Each calls the same command as the API (app/services/lifecycle_commands.py), with the same
roles; a refusal shows the form again with the message and the values kept."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.problems import status_of
from app.api.schemas import StatusChangeIn, StatusUndoIn
from app.domain import lifecycle
from app.domain.errors import DomainError, not_found
from app.domain.lifecycle import Act
from app.domain.reasons import check_reason
from app.domain.roles import RANDOMIZERS
from app.services import lifecycle_commands, subject_lifecycle
from app.services.actor import Actor
from app.services.subject_lifecycle import StatusHistoryOut
from app.web.common import form_retry
from app.web.forms import (
    Form,
    FormState,
    errors_from_service,
    errors_from_validation,
    form_text,
    form_values,
    invalid_form,
    new_idempotency_key,
    present,
    render_form,
    today_iso,
    without_passwords,
)
from app.web.pages_subjects import subject_view
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

Recorder = Annotated[Actor, Depends(page_actor(*RANDOMIZERS))]
ACTS_BY_PATH = {path: act for act, path in lifecycle_commands.PATHS.items()}
CATEGORY_LABELS = {
    "eligibility_not_met": "Eligibility criteria not met",
    "withdrawal_by_subject": "Withdrawal by the subject (consent withdrawn)",
    "physician_decision": "Physician decision",
    "adverse_event": "Adverse event",
    "lack_of_efficacy": "Lack of efficacy",
    "pregnancy": "Pregnancy",
    "protocol_deviation": "Protocol deviation",
    "lost_to_follow_up": "Lost to follow-up",
    "death": "Death",
    "sponsor_decision": "Sponsor decision",
    "completed": "Completed as planned",
    "other": "Other",
}
FIELDS = ("effective_date", "reason_category", "reason")


def _act_of(path: str) -> Act:
    act = ACTS_BY_PATH.get(path)
    if act is None:
        raise not_found(f"Status change {path!r}")
    return act


def _history(db: DB, actor: Actor, subject_id: int) -> StatusHistoryOut:
    with db.read() as session:
        return subject_lifecycle.history(session, actor=actor, subject_id=subject_id)


def _act_page(request: Request, *, act: Act, subject: dict[str, Any], form: FormState) -> Response:
    categories = [(c, CATEGORY_LABELS.get(c, c)) for c in lifecycle.REASON_CATEGORIES[act]]
    return render_form(
        request,
        "subjects/status_change.html",
        form=form,
        title=f"{lifecycle.ACT_LABELS[act]} of subject {subject['screening_number']}",
        subject=subject,
        act=act,
        act_label=lifecycle.ACT_LABELS[act],
        path=lifecycle_commands.PATHS[act],
        categories=categories,
        status_label=lifecycle.label(subject["status"]),
        target_label=lifecycle.label(lifecycle.MOVES[act][1]),
        possible=act in lifecycle.allowed_acts(subject["status"]),
    )


def _parse(request: Request, *, act: Act, subject: dict[str, Any], form: FormData) -> Any:
    """The validated body, or the form shown again with its errors (422, audited)."""
    values = form_values(form)
    sent = present({name: form_text(form, name) for name in FIELDS})
    try:
        return StatusChangeIn.model_validate(sent)
    except ValidationError as exc:
        refused = invalid_form(request, values, errors_from_validation(exc), sent=sent)
        return _act_page(request, act=act, subject=subject, form=refused)


@router.get("/subjects/{subject_id}/status/{path}")
def act_form(request: Request, subject_id: RowId, path: str, actor: Recorder, db: DB) -> Response:
    act = _act_of(path)
    subject = subject_view(db, actor, subject_id)
    values = {"idempotency_key": new_idempotency_key(), "effective_date": today_iso()}
    if act is Act.COMPLETE:
        values["reason_category"] = "completed"
    return _act_page(request, act=act, subject=subject, form=FormState(values))


@router.post("/subjects/{subject_id}/status/{path}/review")
def act_review(
    request: Request, subject_id: RowId, path: str, actor: Recorder, form: Form, db: DB
) -> Response:
    """What will be recorded, for a last look; "Change answers" goes back to the form."""
    act = _act_of(path)
    subject = subject_view(db, actor, subject_id)
    if form.get("action") == "edit":
        return _act_page(request, act=act, subject=subject, form=FormState(form_values(form)))
    parsed = _parse(request, act=act, subject=subject, form=form)
    if isinstance(parsed, Response):
        return parsed
    try:
        lifecycle.check_reason_category(act, parsed.reason_category)
        lifecycle.check_move(subject["status"], act)
    except DomainError as exc:
        refused = FormState(form_values(form), errors_from_service(exc), status_of(exc))
        return _act_page(request, act=act, subject=subject, form=refused)
    return render(
        request,
        "subjects/status_review.html",
        title=f"Review the {lifecycle.ACT_LABELS[act].lower()} of subject "
        f"{subject['screening_number']}",
        subject=subject,
        act_label=lifecycle.ACT_LABELS[act],
        path=lifecycle_commands.PATHS[act],
        body=parsed,
        category_label=CATEGORY_LABELS.get(parsed.reason_category, parsed.reason_category),
        status_label=lifecycle.label(subject["status"]),
        target_label=lifecycle.label(lifecycle.MOVES[act][1]),
        no_more_kits=not lifecycle.on_treatment(lifecycle.MOVES[act][1]),
        values=form_values(form),
    )


@router.post("/subjects/{subject_id}/status/{path}")
def act_submit(
    request: Request,
    subject_id: RowId,
    path: str,
    actor: Recorder,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    act = _act_of(path)
    subject = subject_view(db, actor, subject_id)
    parsed = _parse(request, act=act, subject=subject, form=form)
    if isinstance(parsed, Response):
        return parsed
    try:
        result = lifecycle_commands.record_status_change(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(form_text(form, "idempotency_key"), settings),
            subject_id=subject_id,
            act=act,
            effective_date=parsed.effective_date,
            reason_category=parsed.reason_category,
            reason=parsed.reason,
        ).result
    except DomainError as exc:
        refused = FormState(form_values(form), errors_from_service(exc), status_of(exc))
        return _act_page(request, act=act, subject=subject, form=refused)
    return see_other(f"/confirmations/{result.confirmation_id}")


# --- undo -------------------------------------------------------------------------------------


def _undo_page(
    request: Request,
    *,
    db: DB,
    actor: Actor,
    subject: dict[str, Any],
    form: FormState,
    review: bool = False,
) -> Response:
    history = _history(db, actor, subject["subject_id"])
    latest = next((c for c in history.changes if c.change_id == history.undoable_change_id), None)
    meaning = None
    if latest is not None:
        with db.read() as session:
            meaning = subject_lifecycle.undo_meaning(
                session, actor=actor, subject_id=subject["subject_id"], change_id=latest.change_id
            )
    return render_form(
        request,
        "subjects/status_undo.html",
        form=form,
        title=f"Undo a status change of subject {subject['screening_number']}",
        subject=subject,
        latest=latest,
        act_label=lifecycle.ACT_LABELS[latest.act] if latest and latest.act else "",
        back_to=lifecycle.label(latest.from_status) if latest else "",
        status_label=lifecycle.label(subject["status"]),
        meaning=meaning,
        review=review and latest is not None,
    )


@router.get("/subjects/{subject_id}/status-undo")
def undo_form(request: Request, subject_id: RowId, actor: Recorder, db: DB) -> Response:
    subject = subject_view(db, actor, subject_id)
    values = {"idempotency_key": new_idempotency_key()}
    return _undo_page(request, db=db, actor=actor, subject=subject, form=FormState(values))


@router.post("/subjects/{subject_id}/status-undo/review")
def undo_review(
    request: Request, subject_id: RowId, actor: Recorder, form: Form, db: DB
) -> Response:
    """The change that will be undone and the reason, with the signature to confirm it."""
    subject = subject_view(db, actor, subject_id)
    values = without_passwords(form_values(form))
    if form.get("action") == "edit":
        return _undo_page(request, db=db, actor=actor, subject=subject, form=FormState(values))
    try:
        check_reason(form_text(form, "reason") or "")
    except DomainError as exc:
        refused = FormState(values, errors_from_service(exc), status_of(exc))
        return _undo_page(request, db=db, actor=actor, subject=subject, form=refused)
    return _undo_page(
        request, db=db, actor=actor, subject=subject, form=FormState(values), review=True
    )


@router.post("/subjects/{subject_id}/status-undo")
def undo_submit(
    request: Request,
    subject_id: RowId,
    actor: Recorder,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    subject = subject_view(db, actor, subject_id)
    values = without_passwords(form_values(form))
    signature = present(
        {
            "password": form.get("signature.password") or None,
            "meaning": form_text(form, "signature.meaning"),
        }
    )
    sent = present({"reason": form_text(form, "reason")}) | {"signature": signature}
    change_id = form_text(form, "change_id") or ""
    try:
        body = StatusUndoIn.model_validate(sent)
    except ValidationError as exc:
        refused = invalid_form(request, values, errors_from_validation(exc), sent=sent)
        return _undo_page(request, db=db, actor=actor, subject=subject, form=refused, review=True)
    try:
        result = lifecycle_commands.undo_status_change(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(form_text(form, "idempotency_key"), settings),
            settings=settings,
            subject_id=subject_id,
            change_id=int(change_id) if change_id.isdigit() else 0,
            reason=body.reason,
            signature=body.signature.given(),
        ).result
    except DomainError as exc:
        refused = FormState(values, errors_from_service(exc), status_of(exc))
        review = exc.code.startswith("signature")
        return _undo_page(request, db=db, actor=actor, subject=subject, form=refused, review=review)
    return see_other(f"/confirmations/{result.confirmation_id}")
