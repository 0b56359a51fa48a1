"""Reads for the data exports (docs/exports.md): one snapshot, then a pure builder.

A blinded snapshot never reads an arm, a kit content or a lot, so no builder can write one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import DispensedKit, Dispensing, Kit, Randomization, Site, Slot, Subject
from app.domain.errors import validation_error
from app.domain.exports import fhir, odm, sdtm
from app.domain.exports.records import (
    ExportData,
    KitRecord,
    RandomizationRecord,
    SiteRecord,
    SubjectRecord,
    VisitRecord,
)
from app.domain.study import StudyDefinition
from app.services.study_state import current_study

ExportFormat = Literal["sdtm", "odm", "fhir"]


def snapshot(
    session: Session, *, study: StudyDefinition, blinded: bool, now: datetime
) -> ExportData:
    """Every site and subject with its randomization and the kits in use at each visit."""
    sites = tuple(
        SiteRecord(s.id, s.name, s.country)
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
    for d in session.execute(select(Dispensing).order_by(Dispensing.visit_index)).scalars():
        visits[d.subject_id].append(
            VisitRecord(d.visit, d.visit_date, d.dose_mg, tuple(kits.get(d.id, ())))
        )
    subjects = tuple(
        SubjectRecord(
            subject_id=s.id,
            site_id=s.site_id,
            screening_number=s.screening_number,
            sex=s.sex,
            year_of_birth=s.year_of_birth,
            randomization=randomizations.get(s.id),
            visits=tuple(visits.get(s.id, ())),
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
    """One SDTM-style dataset (dm, ds, ex; ta unblinded only) or `define`, as CSV."""
    allowed = (*sdtm.dataset_names(blinded), "define")
    if name not in allowed:
        raise validation_error("dataset", f"unknown dataset {name!r}: use one of {allowed}")
    return sdtm.dataset_csv(snapshot(session, study=study, blinded=blinded, now=now), name)


def export_bytes(
    session: Session, *, study: StudyDefinition, kind: ExportFormat, blinded: bool, now: datetime
) -> bytes:
    """A whole export: the SDTM zip, the ODM XML or the FHIR bundle JSON."""
    data = snapshot(session, study=study, blinded=blinded, now=now)
    if kind == "sdtm":
        return sdtm.sdtm_zip(data)
    if kind == "odm":
        return odm.odm_xml(data).encode("utf-8")
    return fhir.fhir_json(data).encode("utf-8")
