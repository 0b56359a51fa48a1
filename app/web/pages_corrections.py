"""Data correction pages: the form on the subject page, a review that shows the value as it
stands, the new one and the meaning of the signature, and the signed submit, calling the same
command as the API (app/services/correction_commands.py). Also the mis-stratification report
page and its CSV (the arm for the unblinded monitor only, that read recorded)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.downloads import csv_download
from app.api.problems import status_of
from app.api.schemas import CorrectionIn
from app.domain.corrections import CORRECTABLE
from app.domain.errors import DomainError
from app.domain.roles import CORRECTORS, MISSTRATIFICATION_READERS, Role
from app.services import corrections, unblinded_reads
from app.services.actor import Actor
from app.services.correction_commands import correct
from app.services.transaction import utcnow
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
    without_passwords,
)
from app.web.pages_reports import _links as report_links
from app.web.pages_subjects import subject_view
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

Corrector = Annotated[Actor, Depends(page_actor(*CORRECTORS))]
Readers = Annotated[Actor, Depends(page_actor(*MISSTRATIFICATION_READERS))]
FIELDS = [(name, spec.label) for name, spec in CORRECTABLE.items()]
PLAIN = ("field", "visit", "new_value", "reason")


def _form_page(request: Request, *, subject: dict[str, Any], form: FormState) -> Response:
    return render_form(
        request,
        "subjects/correct.html",
        form=form,
        title=f"Correct the data of subject {subject['screening_number']}",
        subject=subject,
        fields=FIELDS,
    )


def _body(form: Any, *, signed: bool) -> dict[str, Any]:
    body = present({name: form_text(form, name) for name in PLAIN})
    body["signature"] = present(
        {
            "password": (form.get("signature.password") or None) if signed else "-",
            "meaning": form_text(form, "signature.meaning"),
        }
    )
    return body


def _parse(
    request: Request, *, subject: dict[str, Any], form: Any, signed: bool
) -> CorrectionIn | Response:
    try:
        return CorrectionIn.model_validate(_body(form, signed=signed))
    except ValidationError as exc:
        values = without_passwords(form_values(form))
        refused = invalid_form(request, values, errors_from_validation(exc), sent=values)
        return _form_page(request, subject=subject, form=refused)


@router.get("/subjects/{subject_id}/corrections/new")
def correction_form(
    request: Request, subject_id: RowId, actor: Corrector, db: DB, field: str = ""
) -> Response:
    subject = subject_view(db, actor, subject_id)
    values = {"idempotency_key": new_idempotency_key(), "field": field, "visit": "D1"}
    return _form_page(request, subject=subject, form=FormState(values))


@router.post("/subjects/{subject_id}/corrections/review")
def correction_review(
    request: Request, subject_id: RowId, actor: Corrector, form: Form, db: DB, study: StudyDep
) -> Response:
    """The value as it stands and the new one, the stratum it gives, and the meaning signed;
    "Change" goes back to the form."""
    subject = subject_view(db, actor, subject_id)
    values = without_passwords(form_values(form))
    if form.get("action") == "edit":
        return _form_page(request, subject=subject, form=FormState(values))
    parsed = _parse(request, subject=subject, form=form, signed=False)
    if isinstance(parsed, Response):
        return parsed
    try:
        with db.read() as session:
            planned = corrections.plan(
                session,
                study=study,
                actor=actor,
                subject_id=subject_id,
                field=parsed.field,
                visit=parsed.visit,
                new_value=parsed.new_value,
                today=utcnow().date(),
            )
    except DomainError as exc:
        refused = FormState(values, errors_from_service(exc), status_of(exc))
        return _form_page(request, subject=subject, form=refused)
    return _review_page(request, subject=subject, planned=planned, values=values, form=None)


def _review_page(
    request: Request,
    *,
    subject: dict[str, Any],
    planned: corrections.Plan,
    values: dict[str, str],
    form: FormState | None,
) -> Response:
    return render_form(
        request,
        "subjects/correct_review.html",
        form=form,
        title=f"Review the correction of subject {subject['screening_number']}",
        subject=subject,
        planned=planned,
        kept={k: v for k, v in values.items() if k in (*PLAIN, "idempotency_key")},
    )


@router.post("/subjects/{subject_id}/corrections")
def correction_submit(
    request: Request,
    subject_id: RowId,
    actor: Corrector,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    subject = subject_view(db, actor, subject_id)
    values = without_passwords(form_values(form))
    parsed = _parse(request, subject=subject, form=form, signed=True)
    if isinstance(parsed, Response):
        return parsed
    try:
        correct(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(form_text(form, "idempotency_key"), settings),
            subject_id=subject_id,
            field=parsed.field,
            visit=parsed.visit,
            new_value=parsed.new_value,
            reason=parsed.reason,
            settings=settings,
            signature=parsed.signature.given(),
        )
    except DomainError as exc:
        state = FormState(values, errors_from_service(exc), status_of(exc))
        if exc.code.startswith("signature") or exc.code == "too_many_attempts":
            with db.read() as session:
                planned = corrections.plan(
                    session,
                    study=study,
                    actor=actor,
                    subject_id=subject_id,
                    field=parsed.field,
                    visit=parsed.visit,
                    new_value=parsed.new_value,
                    today=utcnow().date(),
                )
            return _review_page(
                request, subject=subject, planned=planned, values=values, form=state
            )
        return _form_page(request, subject=subject, form=state)
    return see_other(f"/subjects/{subject_id}#corrections")


# --- the mis-stratification report -------------------------------------------------------------


def _with_arm(actor: Actor) -> bool:
    return actor.role == Role.UNBLINDED_MONITOR


@router.get("/reports/misstratified")
def misstratified_page(request: Request, actor: Readers, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.misstratified(db=db, study=study, actor=actor, with_arm=_with_arm(actor))
    return render(
        request,
        "reports/misstratified.html",
        title="Mis-stratified subjects",
        rows=rows,
        with_arm=_with_arm(actor),
        links=report_links(actor),
    )


@router.get("/reports/misstratified.csv")
def misstratified_csv(actor: Readers, db: DB, study: StudyDep) -> Response:
    rows = unblinded_reads.misstratified(db=db, study=study, actor=actor, with_arm=_with_arm(actor))
    text = corrections.misstratified_csv(rows, with_arm=_with_arm(actor))
    return csv_download(text, "misstratified.csv")
