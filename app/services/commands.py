"""The commands that allocate or reveal: one function per use case, called by the API, the
pages and the CLI alike.

Each command owns its unit of work: it claims the Idempotency-Key, runs the rules in one writing
transaction (audit entries included, app/services/transaction.py), stores its answer with the
key, and after a `no_kits_available` rollback requests the urgent resupply in a transaction of
its own. Callers only translate: form or JSON in, a typed result or a DomainError out. A retry
with the same key gets the first answer back (`replayed`), rebuilt into the same type.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.domain import signatures as meanings
from app.domain.eligibility import EligibilityAnswers
from app.domain.errors import DomainError, MalformedRequest
from app.domain.kits import KitStatus
from app.domain.study import StudyDefinition
from app.services import (
    attempts,
    dispensing,
    emergency_unblinding,
    idempotency,
    randomization,
    shipments,
    signatures,
    subjects,
)
from app.services.actor import Actor
from app.services.results import (
    DispenseOut,
    RandomizeOut,
    ReplaceResultOut,
    ShipmentOut,
    SubjectOut,
    UnblindResultOut,
)
from app.services.shipments import Receipt
from app.services.signatures import SignatureInput
from app.services.transaction import utcnow, writing
from app.settings import Settings

Result = TypeVar("Result", bound=BaseModel)


@dataclass(frozen=True)
class Done(Generic[Result]):
    """A command's answer; `replayed` when it is the stored answer to an earlier try."""

    result: Result
    replayed: bool = False


@dataclass(frozen=True)
class Retry:
    """How a caller retries: its Idempotency-Key, the lease a claim holds, and how long to wait
    for the same key's first try to finish (a double-submitted form waits; the API answers 409
    `idempotency_in_flight` at once)."""

    key: str | None
    lease_seconds: int
    wait_seconds: float = 0.0


def run_once(
    db: Database,
    *,
    actor: Actor,
    retry: Retry,
    endpoint: str,
    payload: object,
    result: type[Result],
    work: Callable[[Session], dict[str, Any]],
    status: int = 201,
) -> Done[Result]:
    """Run `work` in one writing transaction, at most once per Idempotency-Key; a retry gets
    the stored answer back, rebuilt into `result`."""
    _, body, replayed = idempotency.run(
        db,
        actor=actor,
        key=retry.key,
        endpoint=endpoint,
        payload=payload,
        lease_seconds=retry.lease_seconds,
        work=lambda session: (status, work(session)),
    )
    return Done(result.model_validate(body), replayed)


def register_subject(
    *,
    db: Database,
    actor: Actor,
    retry: Retry,
    site_id: str,
    screening_number: str,
    sex: str,
    year_of_birth: int,
) -> Done[SubjectOut]:
    """Register a screened subject at a site; with a key, at most once per key (a key is
    optional here: a second registration of the screening number is refused anyway)."""
    payload: dict[str, object] = {
        "site_id": site_id,
        "screening_number": screening_number,
        "sex": sex,
        "year_of_birth": year_of_birth,
    }
    with attempts.refusals_recorded(
        db,
        actor=actor,
        action="subject.register_refused",
        entity="site",
        entity_id=site_id,
        sent=payload,
    ):
        return run_once(
            db,
            actor=actor,
            retry=retry,
            endpoint="POST /subjects",
            payload=payload,
            result=SubjectOut,
            work=lambda session: subjects.register(
                session,
                actor=actor,
                site_id=site_id,
                screening_number=screening_number,
                sex=sex,
                year_of_birth=year_of_birth,
            ),
        )


def randomize(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    subject_id: int,
    visit_date: date,
    weight_kg: Decimal,
    answers: EligibilityAnswers,
) -> Done[RandomizeOut]:
    """Randomize one subject and dispense day 1, at most once per key."""
    return _allocate(
        db=db,
        study=study,
        actor=actor,
        retry=retry,
        what="Randomization",
        refused="subject.randomize_refused",
        subject_id=subject_id,
        endpoint=f"POST /subjects/{subject_id}/randomize",
        payload={
            "visit_date": visit_date,
            "weight_kg": weight_kg,
            "eligibility": dataclasses.asdict(answers),
        },
        result=RandomizeOut,
        work=lambda session: randomization.randomize(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_date=visit_date,
            weight_kg=weight_kg,
            answers=answers,
        ),
    )


def dispense(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    subject_id: int,
    visit_code: str,
    visit_date: date,
    weight_kg: Decimal,
    window_override_reason: str | None = None,
) -> Done[DispenseOut]:
    """Dose a later visit (weight measured today), at most once per key; outside its window
    with an investigator's override reason."""
    payload: dict[str, Any] = {
        "visit": visit_code,
        "visit_date": visit_date,
        "weight_kg": weight_kg,
    }
    if window_override_reason is not None:
        payload["window_override_reason"] = window_override_reason
    return _allocate(
        db=db,
        study=study,
        actor=actor,
        retry=retry,
        what="Dispensing",
        refused="subject.dispense_refused",
        subject_id=subject_id,
        endpoint=f"POST /subjects/{subject_id}/dispense",
        payload=payload,
        result=DispenseOut,
        work=lambda session: dispensing.dispense(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            visit_code=visit_code,
            visit_date=visit_date,
            weight_kg=weight_kg,
            window_override_reason=window_override_reason,
        ),
    )


def replace_kit(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    subject_id: int,
    kit_number: str,
    status: KitStatus,
    reason: str,
) -> Done[ReplaceResultOut]:
    """Mark a dispensed kit damaged or lost and give another of its content, at most once."""
    return _allocate(
        db=db,
        study=study,
        actor=actor,
        retry=retry,
        what="Kit replacement",
        refused="subject.replace_kit_refused",
        subject_id=subject_id,
        endpoint=f"POST /subjects/{subject_id}/kits/{kit_number}/replace",
        payload={"reason": reason, "status": status.value},
        sent={"kit_number": kit_number, "reason": reason, "status": status.value},
        result=ReplaceResultOut,
        work=lambda session: dispensing.replace_kit(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            kit_number=kit_number,
            status=status,
            reason=reason,
            today=utcnow().date(),
        ),
    )


def unblind(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    subject_id: int,
    reason_category: str,
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> UnblindResultOut:
    """Emergency unblinding of one subject by an investigator: signed, audited, notified. Not
    keyed: a second unblinding of the same subject is refused by the rule itself."""
    with db.read() as session:
        subject = subjects.get_visible_subject(session, actor=actor, subject_id=subject_id)
        meaning = meanings.unblinding_meaning(
            screening_number=subject.screening_number, site_id=subject.site_id
        )
    signed = signatures.sign(db, settings=settings, actor=actor, given=signature, meaning=meaning)
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="subject.unblind_refused",
            entity="subject",
            entity_id=subject_id,
            sent={"reason_category": reason_category, "reason": reason},
        ),
        writing(db) as session,
    ):
        body = emergency_unblinding.unblind(
            session,
            study=study,
            actor=actor,
            subject_id=subject_id,
            reason_category=reason_category,
            reason=reason,
            signature=signed,
        )
    return UnblindResultOut.model_validate(body)


def receive_shipment(
    *, db: Database, study: StudyDefinition, actor: Actor, shipment_id: int, receipt: Receipt
) -> ShipmentOut:
    """Record a shipment's arrival at the site, kit by kit. Not keyed: a second receipt of the
    same shipment is refused by the rule itself (it is no longer `shipped`)."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="shipment.receive_refused",
            entity="shipment",
            entity_id=shipment_id,
            sent=dataclasses.asdict(receipt),
        ),
        writing(db) as session,
    ):
        body = shipments.receive(
            session, study=study, actor=actor, shipment_id=shipment_id, receipt=receipt
        )
    return ShipmentOut.model_validate(body)


def _allocate(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    what: str,
    refused: str,
    subject_id: int,
    endpoint: str,
    payload: dict[str, Any],
    result: type[Result],
    work: Callable[[Session], dict[str, Any]],
    sent: dict[str, Any] | None = None,
) -> Done[Result]:
    """Run an allocating command once per key; its final refusal is recorded as `refused`
    (a wait for the same key's first try is not a refusal of its own)."""
    with attempts.refusals_recorded(
        db,
        actor=actor,
        action=refused,
        entity="subject",
        entity_id=subject_id,
        sent=payload if sent is None else sent,
    ):
        return _allocate_once_per_key(
            db=db,
            study=study,
            actor=actor,
            retry=retry,
            what=what,
            endpoint=endpoint,
            payload=payload,
            result=result,
            work=work,
        )


def _allocate_once_per_key(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    retry: Retry,
    what: str,
    endpoint: str,
    payload: dict[str, Any],
    result: type[Result],
    work: Callable[[Session], dict[str, Any]],
) -> Done[Result]:
    if not retry.key:
        raise MalformedRequest(
            "idempotency_key_required",
            f"{what} needs an Idempotency-Key header (any unique text, reused on retry).",
        )
    deadline = time.monotonic() + retry.wait_seconds
    while True:
        try:
            with dispensing.urgent_resupply_on_shortage(db, study):
                return run_once(
                    db,
                    actor=actor,
                    retry=retry,
                    endpoint=endpoint,
                    payload=payload,
                    result=result,
                    work=work,
                )
        except DomainError as exc:
            if exc.code != "idempotency_in_flight" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
