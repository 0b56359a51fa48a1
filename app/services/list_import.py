"""Importing a randomization list file through the API: one use case, signed under the file's
SHA-256 (the meaning names the very file approved) like `irt lists import`, refused whole with
every problem named, and a refusal recorded in the audit trail (`randomization_list.import_refused`)
with what was sent, never the file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from app.db.engine import Database
from app.domain import signatures as meanings
from app.domain.errors import InvalidInput
from app.domain.study import StudyDefinition
from app.services import attempts, lists, signatures
from app.services.actor import Actor
from app.services.signatures import SignatureInput
from app.services.transaction import writing
from app.settings import Settings


def decode_list(raw: bytes) -> str:
    """An uploaded list as text: UTF-8 only (a byte order mark is fine), nothing replaced."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "invalid_list",
            "The list file was refused; nothing was imported.",
            problems=[f"the file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8"],
        ) from None


def import_list(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    raw: bytes,
    file_format: str,
    scope: str,
    columns: Mapping[str, str],
    dag_sites: Mapping[str, str],
    settings: Settings,
    signature: SignatureInput,
) -> list[dict[str, Any]]:
    """Store the file's list(s) or nothing; answer the commitments of the scopes imported."""
    sent = {"format": file_format, "scope": scope, "columns": dict(columns), "dag": dict(dag_sites)}

    def refusals() -> AbstractContextManager[None]:
        return attempts.refusals_recorded(
            db,
            actor=actor,
            action="randomization_list.import_refused",
            entity="randomization_list",
            entity_id=scope,
            sent={**sent, "sha256": hashlib.sha256(raw).hexdigest()},
        )

    with refusals():
        text = decode_list(raw)
    signed = signatures.sign(
        db,
        settings=settings,
        actor=actor,
        given=signature,
        meaning=meanings.list_import_meaning(hashlib.sha256(text.encode("utf-8")).hexdigest()),
    )
    with refusals(), writing(db) as session:
        scopes = lists.import_csv(
            session,
            study=study,
            actor=actor,
            text=text,
            file_format=file_format,
            scope=scope,
            signature=signed,
            columns=columns,
            dag_sites=dag_sites,
        )
        session.flush()
        return [c for c in lists.commitments(session) if c["scope"] in scopes]
