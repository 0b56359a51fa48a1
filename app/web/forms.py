"""The pages' forms: the submitted values, the errors of a refused form (next to their fields
and in a summary at the top), and the usual POST: validate with the API's schema, run the use
case, then 303 to the result, or show the form again as entered with its errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.problems import field_of, message_of, status_of
from app.domain.errors import DomainError, NotFound
from app.services import attempts
from app.web.csrf import CSRF_FIELD
from app.web.rendering import render, see_other

T = TypeVar("T")


async def read_form(request: Request) -> FormData:
    """The submitted form (parsed once; Starlette keeps it on the request)."""
    return await request.form()


Form = Annotated[FormData, Depends(read_form)]


@dataclass
class FormErrors:
    """Errors of a refused form: per field (shown next to it) and a summary at the top."""

    fields: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.summary)

    def add(self, name: str, message: str) -> None:
        if name in self.fields:
            self.fields[name] += f"; {message}"
        else:
            self.fields[name] = message
        self.summary.append(f"{name.replace('_', ' ')}: {message}")


def _rename(name: str, renames: Mapping[str, str], strip: Iterable[str]) -> str:
    for prefix in strip:
        name = name.removeprefix(prefix)
    return renames.get(name, name)


def errors_from_validation(
    exc: ValidationError, renames: Mapping[str, str] | None = None, strip: Iterable[str] = ()
) -> FormErrors:
    """A pydantic refusal of the form's values, by form field name."""
    errors = FormErrors()
    for error in exc.errors():
        raw = field_of(tuple(error["loc"]), error["type"])
        errors.add(_rename(raw, renames or {}, tuple(strip)), message_of(dict(error)))
    return errors


def errors_from_service(
    exc: DomainError, renames: Mapping[str, str] | None = None, strip: Iterable[str] = ()
) -> FormErrors:
    """A refusal by a use case: its field errors next to their fields, the message on top."""
    errors = FormErrors()
    field_errors = exc.extra.get("errors") or []
    for item in field_errors:
        name = _rename(str(item["field"]), renames or {}, tuple(strip))
        errors.fields[name] = str(item["message"])
    errors.summary.append(exc.detail)
    return errors


def form_values(form: FormData) -> dict[str, str]:
    """The submitted text values (for showing the form again as entered)."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def without_passwords(values: dict[str, str]) -> dict[str, str]:
    """The values a refused form shows again: never a password (a signature's included)."""
    return {k: v for k, v in values.items() if not k.endswith("password")}


def checkbox(form: Mapping[str, Any], name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def blank_to_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def form_text(form: FormData, name: str) -> str | None:
    """A text field as typed, trimmed; None when blank."""
    value = form.get(name)
    return blank_to_none(value.strip()) if isinstance(value, str) else None


def form_decimal(form: FormData, name: str) -> str | None:
    """A decimal as typed: a comma is taken as the decimal sign (70,5 kg)."""
    value = form_text(form, name)
    return value.replace(",", ".") if value else None


def present(values: dict[str, Any]) -> dict[str, Any]:
    """Blank answers left out, so that the schema reports them as required."""
    return {k: v for k, v in values.items() if v is not None}


def today_iso() -> str:
    """Today (UTC) as a date field's value."""
    return datetime.now(UTC).date().isoformat()


def new_idempotency_key() -> str:
    """A one-time key put into an allocating form when it is rendered."""
    return uuid.uuid4().hex


# --- showing a form, and the usual POST ---------------------------------------------------------


@dataclass(frozen=True)
class FormState:
    """A form as a page shows it: blank (200), or after a refusal as entered, with its errors,
    under the refusal's status."""

    values: dict[str, str] = field(default_factory=dict)
    errors: FormErrors = field(default_factory=FormErrors)
    status_code: int = 200


def render_form(
    request: Request,
    template: str,
    *,
    form: FormState | None,
    defaults: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page with a form: its `values` (the entered ones over `defaults`), `errors`."""
    shown = form or FormState()
    return render(
        request,
        template,
        status_code=shown.status_code,
        errors=shown.errors,
        values={**(defaults or {}), **shown.values},
        **context,
    )


def submit(
    values: dict[str, str],
    *,
    parse: Callable[[], T],
    run: Callable[[T], object],
    prefix: str = "",
) -> FormState | None:
    """Validate the form with the API's schema (`parse`) and run the use case (`run`): None
    when done, else the form to show again (fields named with `prefix`, as in the page's forms;
    422 or the refusal's status). A NotFound is no fault of the form: it ends the request with
    the 404 page."""
    try:
        body = parse()
    except ValidationError as exc:
        status, errors = 422, errors_from_validation(exc)
    else:
        try:
            run(body)
            return None
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            status, errors = status_of(exc), errors_from_service(exc)
    errors.fields = {f"{prefix}{k}": v for k, v in errors.fields.items()}
    return FormState(values, errors, status)


def refused_form(exc: DomainError, values: dict[str, str]) -> FormState:
    """The form to show again, as entered, after a refusal; a NotFound is no fault of the form:
    it ends the request with the 404 page."""
    if isinstance(exc, NotFound):
        raise exc
    return FormState(values, errors_from_service(exc), status_of(exc))


def invalid_form(
    request: Request, values: dict[str, str], errors: FormErrors, *, sent: Mapping[str, Any]
) -> FormState:
    """The form shown again after its schema refused it (422), recorded in the audit trail as
    the API records a request refused for its shape (`request.invalid_refused`), under the
    page's user: a refused attempt never skips the trail."""
    actor = getattr(request.state, "actor", None)
    if actor is not None:
        attempts.record_invalid_request(
            request.app.state.db,
            actor=actor,
            method=request.method,
            path=request.url.path,
            sent=without_passwords(dict(sent)),
            fields=sorted(errors.fields),
        )
    return FormState(values, errors, 422)


def post_form(
    values: dict[str, str],
    *,
    parse: Callable[[], T],
    run: Callable[[T], object],
    again: Callable[[FormState], Response],
    done: str,
    prefix: str = "",
) -> Response:
    """The usual POST (see `submit`): 303 to `done`, or `again` shows the refused form."""
    refused = submit(values, parse=parse, run=run, prefix=prefix)
    return see_other(done) if refused is None else again(refused)
