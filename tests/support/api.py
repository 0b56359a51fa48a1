"""Helpers for the API suites: problem+json checks, the audit trail, route enumeration and the
blinding leak detector."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}

# Words that must never reach a blinded user. Text anywhere in a body or a header value:
LEAK_TEXT = ("placebo", "imc002")
# The problem type namespace is "urn:irt:problem:", and "IMC-002" (the study) never matches
# "imc002". One exception: the blinded FHIR export's one product, the same for every subject.
HARMLESS_TEXT: tuple[str, ...] = ("imc-002 or placebo",)
# ...and words a JSON key must not be made of (a key is split on "_": "kit_content", "slot_id",
# "block_size" and "arm" are all caught; "randomization" or "pharmacist" are not).
LEAK_KEY_WORDS = frozenset(
    {"arm", "arms", "treatment", "content", "contents", "block", "slot", "seed", "lot"}
)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and machine code; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.headers
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code) and body["title"] and body["detail"], body
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    return [e["field"] for e in errors]


def audit_entries(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The whole audit trail, paged through as the unblinded monitor."""
    entries: list[dict[str, Any]] = []
    while True:
        after = entries[-1]["seq"] if entries else 0
        response = client.get(
            "/api/v1/admin/audit", params={"after_seq": after, "limit": 1000}, headers=headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        if not page:
            return entries
        entries.extend(page)


# --- routes -----------------------------------------------------------------------------------


def openapi_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation in the OpenAPI document."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def fill_path(template: str, **values: object) -> str:
    """Replace every `{name}` of a path template; a missing value fails loudly."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no value for path parameter {name} of {template}"
        return str(values[name])

    return re.sub(r"\{(\w+)\}", value, template)


# --- blinding ---------------------------------------------------------------------------------


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _zip_text(response: httpx.Response) -> str | None:
    """The text of every member of a zip answer (None when the answer is no zip)."""
    if not response.headers.get("content-type", "").startswith("application/zip"):
        return None
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        # binary members (SAS XPT) keep their text; a byte that is no UTF-8 becomes U+FFFD
        return "\n".join(
            archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist()
        )


def leaks(response: httpx.Response) -> list[str]:
    """Everything in the response a blinded user must not see (empty list: clean); a zip is
    read member by member."""
    found: list[str] = []
    unzipped = _zip_text(response)
    text = (response.text if unzipped is None else unzipped).lower()
    for harmless in HARMLESS_TEXT:
        text = text.replace(harmless, "")
    found += [f"body contains {word!r}" for word in LEAK_TEXT if word in text]
    for name, header in response.headers.items():
        found += [
            f"header {name} contains {word!r}"
            for word in LEAK_TEXT
            if word in name.lower() or word in header.lower()
        ]
    if unzipped is not None:
        return found
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return found
    for key in _keys(body):
        words = set(key.lower().split("_")) | {key.lower()}
        if words & LEAK_KEY_WORDS or key.lower() == "kit_content":
            found.append(f"JSON key {key!r}")
    return found


def assert_blinded(response: httpx.Response, context: str = "") -> None:
    problems = leaks(response)
    assert not problems, f"{context}: {problems}\n{response.text}"
