"""Subject pages: list, register, detail, randomize (form, review, confirm), dosing visit and
emergency unblinding. Each calls the same use case as the API router, with the same roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import DB, RowId, SettingsDep, StudyDep
from app.api.problems import status_of
from app.api.schemas import DispenseIn, RandomizeIn, SubjectCreate, UnblindIn
from app.domain.eligibility import EXCLUSION_MESSAGES, check_eligibility
from app.domain.errors import DomainError
from app.domain.roles import INVESTIGATORS, RANDOMIZERS, SITE_STAFF, Role
from app.services import commands, confirmations, subjects
from app.services.actor import Actor
from app.services.emergency_unblinding import REASON_CATEGORIES
from app.web.common import form_retry
from app.web.forms import (
    Form,
    FormErrors,
    blank_to_none,
    checkbox,
    errors_from_service,
    errors_from_validation,
    form_values,
    new_idempotency_key,
)
from app.web.rendering import render, see_other
from app.web.session import page_actor

router = APIRouter()

SiteStaff = Annotated[Actor, Depends(page_actor(*SITE_STAFF))]
Randomizer = Annotated[Actor, Depends(page_actor(*RANDOMIZERS))]
Investigator = Annotated[Actor, Depends(page_actor(*INVESTIGATORS))]

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
    **{f"exclusion.{name}": f"exclusions.{name}" for name in EXCLUSIONS},
}
"""Where an eligibility refusal is shown: next to the answer that failed."""
CATEGORY_LABELS = {
    "adverse_event": "Adverse event",
    "overdose": "Overdose",
    "pregnancy": "Pregnancy",
    "other": "Other",
}


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return blank_to_none(value.strip()) if isinstance(value, str) else None


def _decimal(form: FormData, name: str) -> str | None:
    """A decimal as typed: a comma is taken as the decimal sign (70,5 kg)."""
    value = _text(form, name)
    return value.replace(",", ".") if value else None


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Blank answers left out, so that they are reported as required."""
    return {k: v for k, v in values.items() if v is not None}


def _subject(db: DB, actor: Actor, subject_id: int) -> dict[str, Any]:
    with db.read() as session:
        return subjects.subject_detail(session, actor=actor, subject_id=subject_id)


# --- list, register, detail -----------------------------------------------------------------


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


def _register_page(
    request: Request,
    *,
    actor: Actor,
    values: dict[str, Any],
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "subjects/new.html",
        status_code=status_code,
        title="Register a subject",
        sites=sorted(actor.site_ids),
        values=values,
        errors=errors or FormErrors(),
    )


@router.get("/subjects/new")
def register_form(request: Request, actor: SiteStaff) -> Response:
    sites = sorted(actor.site_ids)
    values = {"idempotency_key": new_idempotency_key(), "site_id": sites[0] if sites else ""}
    return _register_page(request, actor=actor, values=values)


@router.post("/subjects/new")
def register_submit(
    request: Request, actor: SiteStaff, form: Form, db: DB, settings: SettingsDep
) -> Response:
    values = form_values(form)
    try:
        body = SubjectCreate.model_validate(
            _present({name: _text(form, name) for name in SubjectCreate.model_fields})
        )
    except ValidationError as exc:
        return _register_page(
            request, actor=actor, values=values, errors=errors_from_validation(exc), status_code=422
        )
    try:
        created = commands.register_subject(
            db=db,
            actor=actor,
            retry=commands.Retry(
                key=_text(form, "idempotency_key"),
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
        return _register_page(
            request, actor=actor, values=values, errors=errors, status_code=status_of(exc)
        )
    return see_other(f"/subjects/{created.subject_id}")


@router.get("/subjects/{subject_id}")
def subject_page(request: Request, subject_id: RowId, actor: SiteStaff, db: DB) -> Response:
    with db.read() as session:
        subject = subjects.subject_detail(session, actor=actor, subject_id=subject_id)
        rows = confirmations.list_visible(session, actor=actor, subject_id=subject_id)
        confirmation_list = [confirmations.view(row) for row in rows]
    return render(
        request,
        "subjects/detail.html",
        title=f"Subject {subject['screening_number']}",
        subject=subject,
        confirmations=confirmation_list,
        may_randomize=actor.role in RANDOMIZERS,
        may_unblind=actor.role == Role.INVESTIGATOR,
        is_pharmacist=actor.role == Role.PHARMACIST,
    )


# --- randomize --------------------------------------------------------------------------------


def _randomize_body(form: FormData) -> dict[str, Any]:
    """The API's randomize body from the form's fields."""
    eligibility: dict[str, Any] = {
        name: _decimal(form, name) if name.endswith("mg_per_day") else _text(form, name)
        for name in ELIGIBILITY_FIELDS
    }
    eligibility["on_soc_medication"] = checkbox(form, "on_soc_medication")
    eligibility["exclusions"] = {name: checkbox(form, f"exclusions.{name}") for name in EXCLUSIONS}
    return _present(
        {
            "visit_date": _text(form, "visit_date"),
            "weight_kg": _decimal(form, "weight_kg"),
            "eligibility": _present(eligibility),
        }
    )


def _randomize_errors(exc: DomainError) -> FormErrors:
    errors = errors_from_service(exc, strip=("eligibility.",))
    for failed in exc.extra.get("failed_criteria") or []:
        name = CRITERION_FIELDS.get(failed["criterion"], failed["criterion"])
        errors.fields[name] = failed["message"]
    return errors


def _randomize_page(
    request: Request,
    *,
    subject: dict[str, Any],
    values: dict[str, Any],
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "subjects/randomize.html",
        status_code=status_code,
        title=f"Randomize subject {subject['screening_number']}",
        subject=subject,
        values=values,
        errors=errors or FormErrors(),
        exclusions=EXCLUSION_MESSAGES,
    )


def _parse_randomize(
    request: Request, *, study: StudyDep, subject: dict[str, Any], form: FormData
) -> RandomizeIn | Response:
    """The validated body, or the form shown again with its errors."""
    values = form_values(form)
    try:
        body = RandomizeIn.model_validate(_randomize_body(form))
    except ValidationError as exc:
        errors = errors_from_validation(exc, strip=("eligibility.",))
        return _randomize_page(
            request, subject=subject, values=values, errors=errors, status_code=422
        )
    failed = check_eligibility(study.eligibility, body.eligibility.to_domain())
    if failed:
        errors = FormErrors(summary=["The subject is not eligible:"])
        for criterion in failed:
            name = CRITERION_FIELDS.get(criterion.criterion, criterion.criterion)
            errors.fields[name] = criterion.message
            errors.summary.append(criterion.message)
        return _randomize_page(
            request, subject=subject, values=values, errors=errors, status_code=422
        )
    return body


@router.get("/subjects/{subject_id}/randomize")
def randomize_form(request: Request, subject_id: RowId, actor: Randomizer, db: DB) -> Response:
    subject = _subject(db, actor, subject_id)
    values = {"idempotency_key": new_idempotency_key(), "visit_date": _today()}
    return _randomize_page(request, subject=subject, values=values)


@router.post("/subjects/{subject_id}/randomize/review")
def randomize_review(
    request: Request, subject_id: RowId, actor: Randomizer, form: Form, db: DB, study: StudyDep
) -> Response:
    """What will be submitted, for a last look; "Change answers" goes back to the form."""
    subject = _subject(db, actor, subject_id)
    if form.get("action") == "edit":
        return _randomize_page(request, subject=subject, values=form_values(form))
    parsed = _parse_randomize(request, study=study, subject=subject, form=form)
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
    subject = _subject(db, actor, subject_id)
    parsed = _parse_randomize(request, study=study, subject=subject, form=form)
    if isinstance(parsed, Response):
        return parsed
    body = parsed
    try:
        result = commands.randomize(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(_text(form, "idempotency_key"), settings),
            subject_id=subject_id,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
            answers=body.eligibility.to_domain(),
        ).result
    except DomainError as exc:
        return _randomize_page(
            request,
            subject=subject,
            values=form_values(form),
            errors=_randomize_errors(exc),
            status_code=status_of(exc),
        )
    return see_other(f"/confirmations/{result.confirmation_id}")


# --- dosing visit -----------------------------------------------------------------------------


def _dispense_page(
    request: Request,
    *,
    study: StudyDep,
    subject: dict[str, Any],
    values: dict[str, Any],
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "subjects/dispense.html",
        status_code=status_code,
        title=f"Dosing visit of subject {subject['screening_number']}",
        subject=subject,
        visits=[v.code for v in study.schedule.visits()[1:]],
        values=values,
        errors=errors or FormErrors(),
    )


def _next_visit(study: StudyDep, subject: dict[str, Any]) -> str:
    codes = [v.code for v in study.schedule.visits()]
    done = [codes.index(v["visit"]) for v in subject["visits"] if v["visit"] in codes]
    following = max(done, default=0) + 1
    return codes[following] if following < len(codes) else ""


@router.get("/subjects/{subject_id}/dispense")
def dispense_form(
    request: Request, subject_id: RowId, actor: SiteStaff, db: DB, study: StudyDep
) -> Response:
    subject = _subject(db, actor, subject_id)
    values = {
        "idempotency_key": new_idempotency_key(),
        "visit": _next_visit(study, subject),
        "visit_date": _today(),
    }
    return _dispense_page(request, study=study, subject=subject, values=values)


@router.post("/subjects/{subject_id}/dispense")
def dispense_submit(
    request: Request,
    subject_id: RowId,
    actor: SiteStaff,
    form: Form,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
) -> Response:
    subject = _subject(db, actor, subject_id)
    values = form_values(form)
    try:
        body = DispenseIn.model_validate(
            _present(
                {
                    "visit": _text(form, "visit"),
                    "visit_date": _text(form, "visit_date"),
                    "weight_kg": _decimal(form, "weight_kg"),
                }
            )
        )
    except ValidationError as exc:
        errors = errors_from_validation(exc)
        return _dispense_page(
            request, study=study, subject=subject, values=values, errors=errors, status_code=422
        )
    try:
        result = commands.dispense(
            db=db,
            study=study,
            actor=actor,
            retry=form_retry(_text(form, "idempotency_key"), settings),
            subject_id=subject_id,
            visit_code=body.visit,
            visit_date=body.visit_date,
            weight_kg=body.weight_kg,
        ).result
    except DomainError as exc:
        errors = errors_from_service(exc)
        if exc.code in ("already_dispensed", "visit_out_of_order"):
            errors.fields["visit"] = exc.detail
        return _dispense_page(
            request,
            study=study,
            subject=subject,
            values=values,
            errors=errors,
            status_code=status_of(exc),
        )
    return see_other(f"/confirmations/{result.confirmation_id}")


# --- emergency unblinding ---------------------------------------------------------------------


def _unblind_page(
    request: Request,
    *,
    subject: dict[str, Any],
    values: dict[str, Any],
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "subjects/unblind.html",
        status_code=status_code,
        title=f"Emergency unblinding of subject {subject['screening_number']}",
        subject=subject,
        categories=[(c, CATEGORY_LABELS.get(c, c)) for c in REASON_CATEGORIES],
        values=values,
        errors=errors or FormErrors(),
    )


@router.get("/subjects/{subject_id}/unblind")
def unblind_form(request: Request, subject_id: RowId, actor: Investigator, db: DB) -> Response:
    return _unblind_page(request, subject=_subject(db, actor, subject_id), values={})


@router.post("/subjects/{subject_id}/unblind")
def unblind_submit(
    request: Request,
    subject_id: RowId,
    actor: Investigator,
    form: Form,
    db: DB,
    study: StudyDep,
) -> Response:
    """Break the blind for this subject once the investigator typed its screening number."""
    subject = _subject(db, actor, subject_id)
    values = form_values(form)
    errors = FormErrors()
    try:
        body = UnblindIn.model_validate(
            _present({name: _text(form, name) for name in ("reason_category", "reason")})
        )
    except ValidationError as exc:
        body = None
        errors = errors_from_validation(exc)
    typed = _text(form, "confirm_screening_number") or ""
    if typed != subject["screening_number"]:
        errors.add(
            "confirm_screening_number",
            "type the subject's screening number exactly as shown to confirm the unblinding",
        )
    if body is None or errors:
        return _unblind_page(
            request, subject=subject, values=values, errors=errors, status_code=422
        )
    try:
        result = commands.unblind(
            db=db,
            study=study,
            actor=actor,
            subject_id=subject_id,
            reason_category=body.reason_category,
            reason=body.reason,
        )
    except DomainError as exc:
        earlier = (
            _own_unblinding(db, actor, subject_id) if exc.code == "already_unblinded" else None
        )
        if earlier is not None:  # a double submit: show the first one's confirmation
            return see_other(f"/confirmations/{earlier}")
        return _unblind_page(
            request,
            subject=subject,
            values=values,
            errors=errors_from_service(exc),
            status_code=status_of(exc),
        )
    return see_other(f"/confirmations/{result.confirmation_id}")


def _own_unblinding(db: DB, actor: Actor, subject_id: int) -> int | None:
    with db.read() as session:
        for row in confirmations.list_visible(session, actor=actor, subject_id=subject_id):
            if row.kind == "unblinding" and row.created_by == actor.username:
                return row.id
    return None
