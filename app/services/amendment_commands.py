"""The sponsor admin's amendments to how many subjects the study takes and under which rules:
caps changed (unused places of closed cohorts moved to phase II), and new versions of the study
definition. Called by the API (app/api/study_admin.py), the admin pages and the CLI alike.

Both are signed (the signature is checked before the transaction starts) and audited; a refusal
is recorded in the trail and changes nothing. A cap change carries an Idempotency-Key: a retry
gets the first answer back instead of moving places twice. A version needs none: loading the
same definition again is refused by the rule itself (`no_change`)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date

from app.db.engine import Database
from app.domain import signatures as meanings
from app.domain.errors import InvalidInput, MalformedRequest
from app.domain.study import StudyDefinition, StudyDefinitionError, parse_study
from app.services import attempts, caps, signatures, study_versions
from app.services.actor import Actor
from app.services.caps import CapsOut
from app.services.commands import Done, Retry, run_once
from app.services.signatures import SignatureInput
from app.services.study_versions import VersionOut
from app.services.transaction import utcnow, writing
from app.settings import Settings


def change_caps(
    *,
    db: Database,
    actor: Actor,
    retry: Retry,
    caps_asked: Mapping[str, int],
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> Done[CapsOut]:
    """Set the named scopes' caps, signed, at most once per Idempotency-Key."""
    asked = dict(sorted(caps_asked.items()))
    sent = {"caps": asked, "reason": reason}
    with attempts.refusals_recorded(
        db, actor=actor, action="caps.change_refused", entity="study", entity_id="caps", sent=sent
    ):
        if not retry.key:
            raise MalformedRequest(
                "idempotency_key_required",
                "A change of caps needs an Idempotency-Key header (any unique text, reused on "
                "retry), so that a retry never moves places twice.",
            )
        signed = signatures.sign(
            db,
            settings=settings,
            actor=actor,
            given=signature,
            meaning=meanings.caps_meaning(asked),
        )
        return run_once(
            db,
            actor=actor,
            retry=retry,
            endpoint="POST /admin/caps",
            payload=sent,
            result=CapsOut,
            status=200,
            work=lambda session: caps.change_caps(
                session, actor=actor, caps=asked, reason=reason, signature=signed
            ).model_dump(mode="json"),
        )


def parse_definition(text: str) -> StudyDefinition:
    """A study definition from TOML text, refused (422 `invalid_definition`) naming every bad
    field."""
    try:
        return parse_study(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            "invalid_definition", f"The study definition is not valid TOML: {exc}."
        ) from None
    except StudyDefinitionError as exc:
        raise InvalidInput(
            "invalid_definition", f"The study definition was refused: {exc}."
        ) from None


def load_study_version(
    *,
    db: Database,
    actor: Actor,
    definition_toml: str,
    effective_date: date,
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> VersionOut:
    """Load a protocol amendment as a new version of the study definition, signed under the
    definition's SHA-256 and its effective date."""
    sent = {"effective_date": effective_date.isoformat(), "reason": reason}
    with attempts.refusals_recorded(
        db,
        actor=actor,
        action="study.load_version_refused",
        entity="study",
        entity_id="version",
        sent=sent,
    ):
        new = parse_definition(definition_toml)
        signed = signatures.sign(
            db,
            settings=settings,
            actor=actor,
            given=signature,
            meaning=meanings.study_version_meaning(
                sha256=new.fingerprint(), effective_date=effective_date.isoformat()
            ),
        )
        with writing(db) as session:
            return study_versions.load_version(
                session,
                actor=actor,
                new=new,
                effective_date=effective_date,
                reason=reason,
                signature=signed,
            )


def list_versions(*, db: Database) -> list[VersionOut]:
    with db.read() as session:
        return study_versions.list_versions(session, today=utcnow().date())
