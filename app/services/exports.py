"""Reads for the data exports (docs/exports.md): one snapshot, then a pure builder.

A blinded snapshot never reads an arm, a kit content or a lot, so no builder can write one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import (
    DispensedKit,
    Dispensing,
    Kit,
    Randomization,
    Site,
    Slot,
    Subject,
    SubjectStatusChange,
    Unblinding,
)
from app.domain.errors import validation_error
from app.domain.exports import fhir, odm, sdtm_files
from app.domain.exports.records import (
    DispositionRecord,
    ExportData,
    KitRecord,
    RandomizationRecord,
    SiteRecord,
    SubjectRecord,
    VisitRecord,
)
from app.domain.study import StudyDefinition
from app.services.study_state import current_study

ExportFormat = Literal["sdtm", "sdtm-xpt", "odm", "fhir"]
"""sdtm: the SDTM datasets as CSV with define.csv; sdtm-xpt: as SAS XPT v5 with define.xml."""


def standing_dispositions(session: Session) -> dict[int, list[DispositionRecord]]:
    """Each subject's status changes that stand (acts no correction has undone), oldest first:
    the disposition events of DS (screen failure, discontinuation, withdrawal, completion)."""
    changes = (
        session.execute(select(SubjectStatusChange).order_by(SubjectStatusChange.id))
        .scalars()
        .all()
    )
    undone = {c.corrects_id for c in changes if c.corrects_id is not None}
    found: dict[int, list[DispositionRecord]] = defaultdict(list)
    for c in changes:
        if c.act is None or c.id in undone:
            continue
        found[c.subject_id].append(
            DispositionRecord(
                act=c.act,
                reason_category=c.reason_category,
                reason=c.reason,
                effective_date=c.effective_date,
                recorded_at=c.recorded_at,
            )
        )
    return found


def snapshot(
    session: Session, *, study: StudyDefinition, blinded: bool, now: datetime
) -> ExportData:
    """Every site and subject with its randomization and the kits in use at each visit."""
    sites = tuple(
        SiteRecord(s.id, s.name, s.country, s.timezone)
        for s in session.execute(select(Site).order_by(Site.id)).scalars()
    )
    randomizations: dict[int, RandomizationRecord] = {}
    for r, arm in session.execute(
        select(Randomization, Slot.arm).join(Slot, Slot.id == Randomization.slot_id)
    ).all():
        randomizations[r.subject_id] = RandomizationRecord(
            number=r.randomization_number,
            stage=r.stage,
            scope=r.scope,
            stratum=r.stratum,
            randomized_at=r.randomized_at,
            visit_date=r.visit_date,
            arm=None if blinded else arm,
        )
    kits: dict[int, list[KitRecord]] = defaultdict(list)
    for dispensing_id, number, content, lot in session.execute(
        select(DispensedKit.dispensing_id, Kit.kit_number, Kit.content, Kit.lot)
        .join(Kit, Kit.kit_number == DispensedKit.kit_number)
        .where(DispensedKit.replaced_at.is_(None))
        .order_by(DispensedKit.kit_number)
    ).all():
        record = KitRecord(number) if blinded else KitRecord(number, content, lot)
        kits[dispensing_id].append(record)
    visits: dict[int, list[VisitRecord]] = defaultdict(list)
    standing = Dispensing.entered_in_error_at.is_(None)  # one entered in error was not given
    for d in session.scalars(select(Dispensing).where(standing).order_by(Dispensing.visit_index)):
        visits[d.subject_id].append(
            VisitRecord(d.visit, d.visit_date, d.dose_mg, tuple(kits.get(d.id, ())))
        )
    unblinded: dict[int, datetime] = {
        subject_id: at
        for subject_id, at in session.execute(
            select(Unblinding.subject_id, Unblinding.unblinded_at)
        )
    }
    dispositions = standing_dispositions(session)
    subjects = tuple(
        SubjectRecord(
            subject_id=s.id,
            site_id=s.site_id,
            screening_number=s.screening_number,
            sex=s.sex,
            year_of_birth=s.year_of_birth,
            randomization=randomizations.get(s.id),
            visits=tuple(visits.get(s.id, ())),
            registered_at=s.created_at,
            unblinded_at=unblinded.get(s.id),
            dispositions=tuple(dispositions.get(s.id, ())),
        )
        for s in session.execute(select(Subject).order_by(Subject.id)).scalars()
    )
    return ExportData(
        study=study,
        phase2_dose_mg_per_kg=current_study(session).phase2_dose_mg_per_kg,
        sites=sites,
        subjects=subjects,
        created_at=now,
        blinded=blinded,
    )


def sdtm_dataset(
    session: Session, *, study: StudyDefinition, name: str, blinded: bool, now: datetime
) -> str:
    """One SDTM dataset (dm, ds, ex, ta, te, tv) or `define`, as CSV."""
    allowed = (*sdtm_files.DATASET_NAMES, "define")
    if name not in allowed:
        raise validation_error("dataset", f"unknown dataset {name!r}: use one of {allowed}")
    return sdtm_files.dataset_csv(snapshot(session, study=study, blinded=blinded, now=now), name)


def export_bytes(
    session: Session, *, study: StudyDefinition, kind: ExportFormat, blinded: bool, now: datetime
) -> bytes:
    """A whole export: an SDTM zip (CSV or XPT), the ODM XML or the FHIR bundle JSON."""
    data = snapshot(session, study=study, blinded=blinded, now=now)
    if kind in ("sdtm", "sdtm-xpt"):
        return sdtm_files.sdtm_zip(data, "xpt" if kind == "sdtm-xpt" else "csv")
    if kind == "odm":
        return odm.odm_xml(data).encode("utf-8")
    return fhir.fhir_json(data).encode("utf-8")


def odm_export(
    session: Session, *, study: StudyDefinition, blinded: bool, now: datetime, subject_key: str
) -> bytes:
    """The ODM XML keyed by USUBJID or by the EDC's subject label (`odm.SUBJECT_KEYS`)."""
    if subject_key not in odm.SUBJECT_KEYS:
        raise validation_error(
            "subject_key", f"subject_key {subject_key!r}: use {' or '.join(odm.SUBJECT_KEYS)}"
        )
    data = snapshot(session, study=study, blinded=blinded, now=now)
    return odm.odm_xml(data, subject_key).encode("utf-8")
