"""Every read or export of unblinded data, one function per use case, each recorded in the audit
trail (`unblinded.read`, app/services/attempts.py) for the API, the pages and the CLI alike.

The data is read first and recorded after, in a short transaction of its own; if the entry
cannot be written the error propagates and the data is not handed out. A refused read (an
unknown dataset or scope) records nothing: nothing was shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.db.engine import Database
from app.domain.environment import mark_file
from app.domain.study import StudyDefinition
from app.services import (
    attempts,
    confirmations,
    corrections,
    emergency_unblinding,
    environment,
    exports,
    inventory,
    lists,
    reports,
    unblinded_allocations,
)
from app.services.actor import Actor


def allocations(*, db: Database, study: StudyDefinition, actor: Actor) -> list[dict[str, Any]]:
    """Every randomized subject with arm and treatment."""
    with db.read() as session:
        rows = unblinded_allocations.allocations(session, study)
    attempts.record_unblinded_read(db, actor=actor, what="allocations")
    return rows


def allocations_csv(*, db: Database, study: StudyDefinition, actor: Actor) -> str:
    """The allocations as a CSV download."""
    with db.read() as session:
        text = unblinded_allocations.allocations_csv(session, study)
    attempts.record_unblinded_read(db, actor=actor, what="allocations_csv")
    return text


def list_export(
    *, db: Database, study: StudyDefinition, actor: Actor, file_format: str, scope: str | None
) -> str:
    """The stored randomization list (canonical, REDCap or Sealed Envelope), every scope or one."""
    with db.read() as session:
        text = lists.export_text(session, study=study, file_format=file_format, scope=scope)
        text = mark_file(environment.mode_of(session), text)  # re-imported by training only
    attempts.record_unblinded_read(
        db,
        actor=actor,
        what="randomization_list",
        entity_id=scope or "all",
        sent={"format": file_format, "scope": scope},
    )
    return text


def all_kits(
    *, db: Database, actor: Actor, site_id: str | None, status: str | None
) -> list[dict[str, Any]]:
    """Every kit with its content and lot."""
    with db.read() as session:
        rows = inventory.all_kits(session, site_id=site_id, status=status)
    attempts.record_unblinded_read(
        db, actor=actor, what="kits", sent={"site_id": site_id, "status": status}
    )
    return rows


def reconciliation(*, db: Database, study: StudyDefinition, actor: Actor) -> list[dict[str, Any]]:
    """Kit counts per site, content and status."""
    with db.read() as session:
        rows = inventory.reconciliation(session, study)
    attempts.record_unblinded_read(db, actor=actor, what="reconciliation")
    return rows


def unblinding_log(*, db: Database, study: StudyDefinition, actor: Actor) -> list[dict[str, Any]]:
    """Every emergency unblinding with the treatment revealed."""
    with db.read() as session:
        rows = emergency_unblinding.unblinding_log(session, study)
    attempts.record_unblinded_read(db, actor=actor, what="unblindings")
    return rows


def unblindings_report(
    *, db: Database, study: StudyDefinition, actor: Actor, with_treatment: bool
) -> list[dict[str, Any]]:
    """The unblindings report of the reader's sites; recorded only when it shows treatments."""
    with db.read() as session:
        rows = reports.unblindings(session, study=study, actor=actor, with_treatment=with_treatment)
    if with_treatment:
        attempts.record_unblinded_read(db, actor=actor, what="unblindings")
    return rows


def misstratified(
    *, db: Database, study: StudyDefinition, actor: Actor, with_arm: bool
) -> list[dict[str, Any]]:
    """The mis-stratified subjects of the reader's sites; recorded only when it shows arms."""
    with db.read() as session:
        rows = corrections.misstratified(session, study=study, actor=actor, with_arm=with_arm)
    if with_arm:
        attempts.record_unblinded_read(db, actor=actor, what="misstratified")
    return rows


def export(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    kind: exports.ExportFormat,
    blinded: bool,
    now: datetime,
) -> bytes:
    """A whole SDTM, ODM or FHIR export; only the unblinded variant is recorded."""
    with db.read() as session:
        body = exports.export_bytes(session, study=study, kind=kind, blinded=blinded, now=now)
    if not blinded:
        attempts.record_unblinded_read(db, actor=actor, what=f"{kind}_export")
    return body


def odm(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    blinded: bool,
    now: datetime,
    subject_key: str,
) -> bytes:
    """The ODM export, keyed by USUBJID or the EDC's subject label; only the unblinded variant
    is recorded."""
    with db.read() as session:
        body = exports.odm_export(
            session, study=study, blinded=blinded, now=now, subject_key=subject_key
        )
    if not blinded:
        attempts.record_unblinded_read(
            db, actor=actor, what="odm_export", sent={"subject_key": subject_key}
        )
    return body


def sdtm_dataset(
    *, db: Database, study: StudyDefinition, actor: Actor, name: str, blinded: bool, now: datetime
) -> str:
    """One SDTM-style dataset as CSV; only the unblinded variant is recorded."""
    with db.read() as session:
        text = exports.sdtm_dataset(session, study=study, name=name, blinded=blinded, now=now)
    if not blinded:
        attempts.record_unblinded_read(db, actor=actor, what="sdtm_export", entity_id=name)
    return text


def confirmation(
    *, db: Database, actor: Actor, confirmation_id: int
) -> tuple[dict[str, Any], bool]:
    """A confirmation the actor may see, with the treatment when they may see it (the unblinded
    variant, then recorded): (view, unblinded)."""
    with db.read() as session:
        row = confirmations.get_visible(session, actor=actor, confirmation_id=confirmation_id)
        unblinded = confirmations.may_see_treatment(actor, row)
        view = confirmations.view(row, with_treatment=unblinded)
    if unblinded:
        attempts.record_unblinded_read(
            db, actor=actor, what="confirmation", entity_id=confirmation_id
        )
    return view, unblinded
