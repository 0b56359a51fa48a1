"""Subject pages: list, register, detail, randomize (form, review, confirm).
Each calls the same use case as the API router (app/services/commands.py), with the same roles;
emergency unblinding and dosing visits have their own modules (pages_unblinding.py,
pages_visits.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.problems import status_of
from app.api.schemas import RandomizeIn, SubjectCreate
from app.domain import lifecycle
from app.domain.eligibility import EXCLUSION_MESSAGES, check_eligibility
from app.domain.errors import DomainError
from app.domain.roles import CORRECTORS, RANDOMIZERS, SITE_STAFF, Role
from app.services import (
    commands,
    confirmations,
    corrections,
    subject_lifecycle,
    subjects,
    visits,
)
from app.services.actor import Actor
from app.services.lifecycle_commands import PATHS
from app.services.transaction import utcnow
from app.web.common import form_retry
from app.web.forms import (
    Form,
    FormErrors,
    FormState,
    blank_to_none,
    checkbox,
    errors_from_service,
    errors_from_validation,
    form_decimal,
    form_text,
    form_values,
    invalid_form,
    new_idempotency_key,
    present,
    render_form,
    today_iso,
)
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

SiteStaff = Annotated[Actor, Depends(page_actor(*SITE_STAFF))]
Randomizer = Annotated[Actor, Depends(page_actor(*RANDOMIZERS))]

ELIGIBILITY_FIELDS = (
    "sle_diagnosis_date",
    "screening_date",
    "sledai_2k_score",
    "bilag_a_count",
    "bilag_b_count",
    "prednisone_equivalent_mg_per_day",
)
EXCLUSIONS = tuple(EXCLUSION_MESSAGES)
CRITERION_FIELDS = {
    "sle_diagnosis_duration": "sle_diagnosis_date",
    "sledai_2k_score": "sledai_2k_score",
    "bilag_2004": "bilag_a_count",
    "on_soc_medication": "on_soc_medication",
    "soc_consistency": "prednisone_equivalent_mg_per_day",
    "screening_window": "screening_date",
    "age_at_screening": "screening_date",
    **{f"exclusion.{name}": f"exclusions.{name}" for name in EXCLUSIONS},
}
"""Where an eligibility refusal is shown: next to the answer that failed."""


def subject_view(db: DB, actor: Actor, subject_id: int) -> dict[str, Any]:
    """The subject as the user may see it (404 for another site's)."""
    with db.read() as session:
        return subjects.subject_detail(session, actor=actor, subject_id=subject_id)


# --- list, register, detail -----------------------------------------------------------------


def _register_page(request: Request, *, actor: Actor, form: FormState) -> Response:
    return render_form(
        request,
        "subjects/new.html",
        form=form,
        title="Register a subject",
        sites=sorted(actor.site_ids),
    )


def _randomize_page(request: Request, *, subject: dict[str, Any], form: FormState) -> Response:
    title = f"Randomize subject {subject['screening_number']}"
    return render_form(
        request,
        "subjects/randomize.html",
        form=form,
        title=title,
        subject=subject,
        exclusions=EXCLUSION_MESSAGES,
    )


@router.get("/subjects")
def subject_list(
    request: Request,
    actor: SiteStaff,
    db: DB,
    site_id: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    site = blank_to_none(site_id)
    with db.read() as session:
        rows = subjects.list_visible(session, actor=actor, site_id=site)
    return render(
        request,
        "subjects/list.html",
        title="Subjects",
        subjects=rows,
        sites=sorted(actor.site_ids),
        site_id=site or "",
        may_register=True,
    )


@router.get("/subjects/new")
def register_form(request: Request, actor: SiteStaff) -> Response:
    sites = sorted(actor.site_ids)
    values = {"idempotency_key": new_idempotency_key(), "site_id": sites[0] if sites else ""}
    return _register_page(request, actor=actor, form=FormState(values))


@router.post("/subjects/new")
def register_submit(
    request: Request, actor: SiteStaff, form: Form, db: DB, settings: SettingsDep
) -> Response:
    values = form_values(form)
    try:
        body = SubjectCreate.model_validate(
            present({name: form_text(form, name) for name in SubjectCreate.model_fields})
        )
    except ValidationError as exc:
        refused = invalid_form(request, values, errors_from_validation(exc), sent=values)
        return _register_page(request, actor=actor, form=refused)
    try:
        created = commands.register_subject(
            db=db,
            actor=actor,
            retry=commands.Retry(
                key=form_text(form, "idempotency_key"),
                lease_seconds=settings.idempotency_lease_seconds,
            ),
            site_id=body.site_id,
            screening_number=body.screening_number,
            sex=body.sex,
            year_of_birth=body.year_of_birth,
        ).result
    except DomainError as exc:
        errors = errors_from_service(exc)
        if exc.code == "duplicate_subject":
            errors.fields["screening_number"] = exc.detail
        elif exc.code in ("not_your_site", "site_not_active"):
            errors.fields["site_id"] = exc.detail
        return _register_page(request, actor=actor, form=FormState(values, errors, status_of(exc)))
    return see_other(f"/subjects/{created.subject_id}")


@router.get("/subjects/{subject_id}")
def subject_page(
    request: Request, subject_id: RowId, actor: SiteStaff, db: DB, study: StudyDep
) -> Response:
    with db.read() as session:
        subject = subjects.subject_detail(session, actor=actor, subject_id=subject_id)
        rows = confirmations.list_visible(session, actor=actor, subject_id=subject_id)
        confirmation_list = [confirmations.view(row) for row in rows]
        history = subject_lifecycle.history(session, actor=actor, subject_id=subject_id)
        corrected = corrections.list_for_subject(session, actor=actor, subject_id=subject_id)
        schedule = visits.subject_schedule(
            session, study=study, actor=actor, subject_id=subject_id, today=utcnow().date()
        )
    return render(
        request,
        "subjects/detail.html",
        title=f"Subject {subject['screening_number']}",
        subject=subject,
        confirmations=confirmation_list,
        may_randomize=actor.role in RANDOMIZERS,
        may_unblind=actor.role == Role.INVESTIGATOR,
        is_pharmacist=actor.role == Role.PHARMACIST,
        may_correct=actor.role in CORRECTORS,
        corrections=corrected,
        schedule=schedule,
        history=history,
        status_label=lifecycle.label(subject["status"]),
        act_labels=lifecycle.ACT_LABELS,
        act_paths=PATHS,
    )


# --- randomize --------------------------------------------------------------------------------


def _randomize_body(form: FormData) -> dict[str, Any]:
    """The API's randomize body from the form's fields."""
    eligibility: dict[str, Any] = {
        name: form_decimal(form, name) if name.endswith("mg_per_day") else form_text(form, name)
        for name in ELIGIBILITY_FIELDS
    }
    eligibility["on_soc_medication"] = checkbox(form, "on_soc_medication")
    eligibility["exclusions"] = {name: checkbox(form, f"exclusions.{name}") for name in EXCLUSIONS}
    return present(
        {
            "visit_date": form_text(form, "visit_date"),
            "weight_kg": form_decimal(form, "weight_kg"),
            "eligibility": present(eligibility),
        }
    )


def _randomize_errors(exc: DomainError) -> FormErrors:
    errors = errors_from_service(exc, strip=("eligibility.",))
    for failed in exc.extra.get("failed_criteria") or []:
        name = CRITERION_FIELDS.get(failed["criterion"], failed["criterion"])
        errors.fields[name] = failed["message"]
    return errors


def _parse_randomize(
    request: Request,
    *,
    study: StudyDep,
    subject: dict[str, Any],
    form: FormData,
    preview: bool = False,
) -> RandomizeIn | Response:
    """The validated body, or the form shown again with its errors. The review (`preview`)
    also shows failed eligibility at once; a submission leaves that to the use case, which
    refuses and records it in the audit trail."""
    values = form_values(form)
    try:
        body = RandomizeIn.model_validate(_randomize_body(form))
    except ValidationError as exc:
        errors = errors_from_validation(exc, strip=("eligibility.",))
        refused = invalid_form(request, values, errors, sent=_randomize_body(form))
        return _randomize_page(request, subject=subject, form=refused)
    failed = (
        check_eligibility(
            study.eligibility,
            body.eligibility.to_domain(),
            year_of_birth=subject["year_of_birth"],
            randomization_date=body.visit_date,
        )
        if preview
        else []
    )
    if failed:
        errors = FormErrors(summary=["The subject is not eligible:"])
        for criterion in failed:
            name = CRITERION_FIELDS.get(criterion.criterion, criterion.criterion)
            errors.fields[name] = criterion.message
            errors.summary.append(criterion.message)
        return _randomize_page(request, subject=subject, form=FormState(values, errors, 422))
    return body


@router.get("/subjects/{subject_id}/randomize")
def randomize_form(request: Request, subject_id: RowId, actor: Randomizer, db: DB) -> Response:
    subject = subject_view(db, actor, subject_id)
    values = {"idempotency_key": new_idempotency_key(), "visit_date": today_iso()}
    return _randomize_page(request, subject=subject, form=FormState(values))


@router.post("/subjects/{subject_id}/randomize/review")
def randomize_review(
    request: Request, subject_id: RowId, actor: Randomizer, form: Form, db: DB, study: StudyDep
) -> Response:
    """What will be submitted, for a last look; "Change answers" goes back to the form."""
    subject = subject_view(db, actor, subject_id)
    if form.get("action") == "edit":
        return _randomize_page(request, subject=subject, form=FormState(form_values(form)))
    parsed = _parse_randomize(request, study=study, subject=subject, form=form, preview=True)
    if isinstance(parsed, Response):
        return parsed
    return render(
        request,
        "subjects/review.html",
        title=f"Review the randomization of subject {subject['screening_number']}",
        subject=subject,
        body=parsed,
        values=form_values(form),
        exclusions=EXCLUSION_MESSAGES,
    )


@router.post("/subjects/{subject_id}/randomize")
def randomize_submit(
    request: Request,
    subject_id: RowId,
    actor: Randomizer,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    subject = subject_view(db, actor, subject_id)
    parsed = _parse_randomize(request, study=study, subject=subject, form=form)
    if isinstance(parsed, Response):
        return parsed
    body = parsed
    retry = form_retry(form_text(form, "idempotency_key"), settings)
    try:
        result = commands.randomize(
            db=db,
            study=study,
            actor=actor,
            retry=retry,
            subject_id=subject_id,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
            answers=body.eligibility.to_domain(),
        ).result
    except DomainError as exc:
        refused = FormState(form_values(form), _randomize_errors(exc), status_of(exc))
        return _randomize_page(request, subject=subject, form=refused)
    return see_other(f"/confirmations/{result.confirmation_id}")
