"""A FHIR R5 Bundle (collection): one ResearchStudy with the arm table as comparison groups and
one ResearchSubject per subject, built with fhir.resources (R5 models)."""

from __future__ import annotations

import uuid

from fhir.resources.bundle import Bundle, BundleEntry
from fhir.resources.codeableconcept import CodeableConcept
from fhir.resources.coding import Coding
from fhir.resources.identifier import Identifier
from fhir.resources.reference import Reference
from fhir.resources.researchstudy import (
    ResearchStudy,
    ResearchStudyComparisonGroup,
    ResearchStudyRecruitment,
)
from fhir.resources.researchsubject import ResearchSubject, ResearchSubjectProgress

from app.domain.exports.records import (
    ExportData,
    PlannedArm,
    SubjectRecord,
    arm_table,
    usubjid,
)

ARM_TYPE = "http://hl7.org/fhir/research-study-arm-type"
MILESTONE = "http://terminology.hl7.org/CodeSystem/research-subject-milestone"
STATE_TYPE = "http://terminology.hl7.org/CodeSystem/research-subject-state-type"
PHASE = "http://terminology.hl7.org/CodeSystem/research-study-phase"
REGISTRY = "https://clinicaltrials.gov"
SUBJECT_SYSTEM = "urn:irt:usubjid"
"""Identifier system of the subjects (USUBJID, as in the SDTM and ODM exports)."""
RANDOMIZATION_SYSTEM = "urn:irt:randomization-number"
_NAMESPACE = uuid.UUID("6f1c2a4e-8d0b-4c1e-9a57-3e2f8b1d0c42")


def _coded(system: str, code: str, display: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


def link_id(armcd: str) -> str:
    """A FHIR `id` ([A-Za-z0-9-.]) of an arm code."""
    return armcd.replace("_", "-")


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _group(arm: PlannedArm) -> ResearchStudyComparisonGroup:
    code, display = (
        ("experimental", "Experimental")
        if arm.active
        else ("placebo-comparator", "Placebo Comparator")
    )
    return ResearchStudyComparisonGroup(
        linkId=link_id(arm.armcd), name=arm.arm, type=_coded(ARM_TYPE, code, display)
    )


def _study(data: ExportData) -> ResearchStudy:
    study = ResearchStudy(
        id=link_id(data.study.code.lower()),
        status="active",
        title=data.study.name,
        name=data.study.code,
        identifier=[Identifier(system=REGISTRY, value=data.study.registry_id)],
        phase=_coded(PHASE, "phase-1-phase-2", "Phase 1/Phase 2"),
        recruitment=ResearchStudyRecruitment(targetNumber=data.study.total_cap),
    )
    if not data.blinded:
        arms = arm_table(data.study, data.phase2_dose_mg_per_kg)
        study.comparisonGroup = [_group(a) for a in arms]
    return study


def _subject(data: ExportData, subject: SubjectRecord, study_url: str) -> ResearchSubject:
    key = usubjid(data.study, subject)
    resource = ResearchSubject(
        id=f"subject-{subject.subject_id}",
        status="active",
        study=Reference(reference=study_url),
        subject=Reference(identifier=Identifier(system=SUBJECT_SYSTEM, value=key), display=key),
        identifier=[Identifier(system=SUBJECT_SYSTEM, value=key)],
    )
    r = subject.randomization
    if r is None:
        return resource
    assert resource.identifier is not None
    resource.identifier.append(Identifier(system=RANDOMIZATION_SYSTEM, value=r.number))
    resource.progress = [
        ResearchSubjectProgress(
            type=_coded(STATE_TYPE, "Milestone", "Milestone"),
            milestone=_coded(MILESTONE, "Randomized", "Randomized"),
            startDate=r.randomized_at.isoformat(timespec="seconds"),
        )
    ]
    if not data.blinded and r.arm is not None:
        resource.assignedComparisonGroup = link_id(f"{r.scope}{r.arm}")
        contents = {k.content for v in subject.visits for k in v.kits}
        if len(contents) == 1:
            resource.actualComparisonGroup = link_id(f"{r.scope}{contents.pop()}")
    return resource


def fhir_bundle(data: ExportData) -> Bundle:
    study_url = _urn(data.study.code, "ResearchStudy")
    entries = [BundleEntry(fullUrl=study_url, resource=_study(data))]
    for subject in sorted(data.subjects, key=lambda s: s.subject_id):
        entries.append(
            BundleEntry(
                fullUrl=_urn(data.study.code, "ResearchSubject", str(subject.subject_id)),
                resource=_subject(data, subject, study_url),
            )
        )
    return Bundle(
        type="collection",
        timestamp=data.created_at.isoformat(timespec="seconds"),
        identifier=Identifier(
            system="urn:irt:export",
            value=_urn(
                data.study.code,
                "blinded" if data.blinded else "unblinded",
                data.created_at.isoformat(),
            ),
        ),
        entry=entries,
    )


def fhir_json(data: ExportData) -> str:
    """The bundle as FHIR JSON (indented)."""
    text: str = fhir_bundle(data).model_dump_json(indent=2)
    return text
