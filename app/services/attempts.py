"""Attempts in the audit trail: refused commands, forbidden requests and unblinded reads.

A refused command rolls its business transaction back, so its own audit entries vanish with it;
`refusals_recorded` then writes one entry of the attempt in a short transaction of its own and
re-raises. Only the audit chain grows: no business row changes. Three kinds, one action name
each, with a JSON `after` of the same shape every time:

- `<entity>.<command>_refused`: {"code", "status", "fields", "sent"} (the refusal's machine code,
  its kind, the fields or criteria it names, and what was sent, secrets dropped);
- `request.forbidden`: {"code": "forbidden", "status": "not_permitted", "fields": [],
  "sent": {"method", "path"}} for a role the route or page does not admit;
- `unblinded.read`: {"sent": {...}} naming what an unblinded reader viewed or exported.

Nothing here carries an arm: refusal codes and the user's own input are arm-independent, and
the refusal's `detail` text is not kept. Only the unblinded monitor reads the trail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from app.db.engine import Database
from app.domain.errors import DomainError
from app.services import audit
from app.services.actor import Actor
from app.services.transaction import writing

log = logging.getLogger(__name__)

FORBIDDEN = "request.forbidden"
UNBLINDED_READ = "unblinded.read"
_SECRET = re.compile(r"password|secret|token|seed", re.IGNORECASE)
_ID_LENGTH = 80  # the audit entry's entity_id column


def sent_without_secrets(sent: Mapping[str, Any]) -> dict[str, Any]:
    """What was sent, minus anything that must never be stored (passwords, tokens, seeds), at
    any depth (a signature's password sits inside `signature`)."""
    return {
        key: sent_without_secrets(value) if isinstance(value, Mapping) else value
        for key, value in sent.items()
        if not _SECRET.search(str(key))
    }


INVALID_REQUEST = "request.invalid_refused"


def record_invalid_request(
    db: Database, *, actor: Actor, method: str, path: str, sent: Any, fields: list[str]
) -> None:
    """A command whose request did not even have the right shape (a weight of -3, a missing
    answer): refused at the edge before any use case ran, recorded like the use cases'
    refusals. Best effort, as `record_refusal`."""
    after = {
        "code": "validation_error",
        "status": "invalid_input",
        "fields": fields,
        "sent": sent_without_secrets(sent) if isinstance(sent, Mapping) else {},
        "method": method,
    }
    _append_best_effort(
        db, actor=actor, action=INVALID_REQUEST, entity="route", entity_id=path, after=after
    )


def refusal_kind(error: DomainError) -> str:
    """The kind of refusal as a name the edges share (`InvalidInput` -> `invalid_input`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _fields(error: DomainError) -> list[str]:
    named = [str(e.get("field", "")) for e in error.extra.get("errors", [])]
    named += [str(c.get("criterion", "")) for c in error.extra.get("failed_criteria", [])]
    return [name for name in named if name]


def _append(
    db: Database, *, actor: Actor, action: str, entity: str, entity_id: object, after: Any
) -> None:
    with writing(db) as session:
        audit.record(
            session,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id)[:_ID_LENGTH],
            before=None,
            after=after,
        )


def _append_best_effort(
    db: Database, *, actor: Actor, action: str, entity: str, entity_id: object, after: Any
) -> None:
    """`_append`, but a failure to write (the database is down) is logged, not raised: the
    refusal it records still reaches the user."""
    try:
        _append(db, actor=actor, action=action, entity=entity, entity_id=entity_id, after=after)
    except Exception:
        log.exception("Could not record %s %s by %s", action, entity_id, actor.username)


def record_refusal(
    db: Database,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: object,
    sent: Mapping[str, Any],
    error: DomainError,
) -> None:
    """One entry for a refused attempt. Best effort: if even this cannot be written (the
    database is down), the refusal still reaches the user and the failure is logged."""
    after = {
        "code": error.code,
        "status": refusal_kind(error),
        "fields": _fields(error),
        "sent": sent_without_secrets(sent),
    }
    _append_best_effort(
        db, actor=actor, action=action, entity=entity, entity_id=entity_id, after=after
    )


@contextmanager
def refusals_recorded(
    db: Database,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: object,
    sent: Mapping[str, Any],
) -> Iterator[None]:
    """Wrap one command: a DomainError inside is recorded as `action`, then re-raised."""
    try:
        yield
    except DomainError as error:
        record_refusal(
            db,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            sent=sent,
            error=error,
        )
        raise


def record_forbidden(db: Database, *, actor: Actor, method: str, path: str) -> None:
    """A request of a role the route or page does not admit (the 403 of the role check)."""
    after = {
        "code": "forbidden",
        "status": "not_permitted",
        "fields": [],
        "sent": {"method": method, "path": path},
    }
    _append_best_effort(
        db, actor=actor, action=FORBIDDEN, entity="route", entity_id=path, after=after
    )


def record_unblinded_read(
    db: Database,
    *,
    actor: Actor,
    what: str,
    entity_id: object = "all",
    sent: Mapping[str, Any] | None = None,
) -> None:
    """An unblinded view or export (`what`) was produced for `actor`. Not best effort: if the
    entry cannot be written the error propagates and the data is not handed out."""
    _append(
        db,
        actor=actor,
        action=UNBLINDED_READ,
        entity=what,
        entity_id=entity_id,
        after={"sent": sent_without_secrets(sent or {})},
    )
