"""The OpenAPI contract says every answer a route can give: the problem+json statuses are added
here, centrally, from what each route is (public or behind a role, with or without input, a
command or a read), so that a route added to a router is documented without code of its own.

What each status means is the one table of app/api/problems.py; every one of them is an RFC 9457
problem (`ProblemDetails`, media type application/problem+json), FastAPI's default 422 (a plain
JSON `HTTPValidationError`, which this app never sends) included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import KEY_REQUIRED, current_actor
from app.api.problems import MEDIA_TYPE, RETRY_AFTER_SECONDS


class FieldProblem(BaseModel):
    field: str = Field(description="The field, dotted (`eligibility.sledai_2k_score`), or `body`.")
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: `code` is the machine-readable reason, `detail` the sentence for the
    user. Some problems carry more members (`errors` for a 422, `retry_after` for a throttled
    login, the criteria of a refused eligibility, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`urn:irt:problem:<code>`")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None


REF = {"$ref": "#/components/schemas/ProblemDetails"}
MEANING = {
    400: "The request cannot be read as sent (e.g. a command without its Idempotency-Key).",
    401: "No valid bearer token (missing, expired, ended by logout) or a wrong login.",
    403: "This role may not do this, or the signature of a signed act was refused.",
    404: "Nothing with this id that the user may see.",
    409: "Refused by the state of the study (e.g. already randomized, no kit available, a "
    "retry with the same Idempotency-Key still in flight or sent with another body).",
    413: "The request body is larger than IRT_MAX_REQUEST_BYTES.",
    422: "A field is not valid (`errors` names each), or a rule of the study refuses the value "
    "(e.g. not eligible).",
    429: "Too many failed attempts (failed logins, or wrong signature passwords); nothing was "
    "done. Try again after Retry-After seconds (also `retry_after`).",
    503: "The database cannot be reached or is busy; nothing was saved. Try again after "
    "Retry-After seconds.",
}


def problem_response(description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": REF}},
    }
    return response


def _with_retry_after(response: dict[str, Any]) -> dict[str, Any]:
    header = {
        "description": "Seconds to wait before trying again "
        f"({RETRY_AFTER_SECONDS} when the database is unavailable).",
        "schema": {"type": "integer", "minimum": 0},
    }
    return {**response, "headers": {"Retry-After": header}}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A required header's schema without the `null` its optional Python type adds."""
    kinds = [k for k in schema.get("anyOf", []) if k.get("type") != "null"]
    if len(kinds) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kinds[0], **rest}


def _dependants(dependant: Dependant) -> list[Dependant]:
    found, pending = [], [dependant]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.dependencies)
    return found


def needs_token(route: APIRoute) -> bool:
    return any(d.call is current_actor for d in _dependants(route.dependant))


def signs(route: APIRoute) -> bool:
    """A signed act: its body carries a `signature`, or its password comes in a header."""
    body = route.body_field.field_info.annotation if route.body_field is not None else None
    fields = getattr(body, "model_fields", {})
    headers = (p.field_info.alias for d in _dependants(route.dependant) for p in d.header_params)
    return "signature" in fields or "Signature-Password" in headers


def statuses(route: APIRoute, method: str) -> set[int]:
    """The problem statuses this route can answer."""
    every = _dependants(route.dependant)
    authenticated = needs_token(route)
    path = route.path
    has_input = route.body_field is not None or any(
        d.path_params or d.query_params or d.header_params or d.cookie_params for d in every
    )
    found = {413, 503}  # any request: the body limit, the database
    if has_input:
        found.add(422)
    if authenticated:
        found |= {401, 403, 404}
        if method != "GET":
            found |= {400, 409, 422}
        if signs(route):
            found.add(429)  # wrong signature passwords pause signing
    elif path.endswith("/auth/token"):
        found |= {401, 422, 429}
    return found


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every FastAPI route with its full path template (FastAPI keeps an included router
    nested, its routes named by their path inside it)."""
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path:
            yield path, route


def _route_table(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    table = {}
    for path, route in api_routes(app):
        if route.include_in_schema:
            for method in route.methods or ():
                table[(path, method.lower())] = route
    return table


def document(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Add the problem answers to every operation of `schema` (FastAPI's document)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["ProblemDetails"] = problem_schema
    routes = _route_table(app)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            if route is None:
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("schema", {}).pop(KEY_REQUIRED, False):
                    parameter["required"] = True  # the command refuses without (400)
                    parameter["schema"] = _not_null(parameter["schema"])
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's plain-JSON default: never sent
            for status in sorted(statuses(route, method.upper())):
                described = responses.get(str(status), {}).get("description")
                answer = problem_response(described or MEANING[status])
                timed = status in (429, 503)
                responses[str(status)] = _with_retry_after(answer) if timed else answer
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema.get("paths", {})):
            components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Replace `app.openapi` by FastAPI's document with the problem answers added (built once)."""

    app.openapi_schema = None  # a document built before (by a page that lists routes) is redone

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = document(schema, app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
