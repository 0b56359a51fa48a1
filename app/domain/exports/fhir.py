"""A FHIR R5 transaction Bundle that a FHIR server loads as it is (docs/exports.md).

Every entry is a conditional update on its business identifier (`PUT Type?identifier=...`),
so loading the file again updates the same resources instead of duplicating them, and every
reference points at the `urn:uuid:` fullUrl of another entry, which the server rewrites to the
id it keeps. Built with fhir.resources (R5 models); no resource claims a profile.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import quote

from fhir.resources.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.codeableconcept import CodeableConcept
from fhir.resources.codeablereference import CodeableReference
from fhir.resources.coding import Coding
from fhir.resources.identifier import Identifier
from fhir.resources.medication import Medication, MedicationBatch
from fhir.resources.medicationadministration import (
    MedicationAdministration,
    MedicationAdministrationDosage,
)
from fhir.resources.medicationdispense import MedicationDispense, MedicationDispensePerformer
from fhir.resources.organization import Organization
from fhir.resources.patient import Patient
from fhir.resources.quantity import Quantity
from fhir.resources.reference import Reference
from fhir.resources.researchstudy import (
    ResearchStudy,
    ResearchStudyComparisonGroup,
    ResearchStudyRecruitment,
)
from fhir.resources.researchsubject import ResearchSubject, ResearchSubjectProgress
from fhir.resources.resource import Resource

from app.domain.exports.records import (
    ExportData,
    KitRecord,
    PlannedArm,
    SiteRecord,
    SubjectRecord,
    VisitRecord,
    arm_table,
    usubjid,
)
from app.domain.exports.sdtm import split_dose
from app.domain.study import StudyDefinition

ARM_TYPE = "http://hl7.org/fhir/research-study-arm-type"
MILESTONE = "http://terminology.hl7.org/CodeSystem/research-subject-milestone"
STATE_TYPE = "http://terminology.hl7.org/CodeSystem/research-subject-state-type"
PHASE = "http://terminology.hl7.org/CodeSystem/research-study-phase"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
REGISTRY = "https://clinicaltrials.gov"
SUBJECT_SYSTEM = "urn:irt:usubjid"
"""Identifier system of the subjects (USUBJID, as in the SDTM and ODM exports)."""
RANDOMIZATION_SYSTEM = "urn:irt:randomization-number"
SITE_SYSTEM = "urn:irt:site-id"
KIT_SYSTEM = "urn:irt:kit-number"
"""Identifier system of a MedicationDispense: one per kit in use, the kit number."""
MEDICATION_SYSTEM = "urn:irt:medication"
ADMINISTRATION_SYSTEM = "urn:irt:administration"
"""Identifier system of a MedicationAdministration: USUBJID/visit."""
BLINDED_MEDICATION = "BLINDED"
INTRAVENOUS = ("47625008", "Intravenous route")
DOSE_FORM = "Solution for injection"
_NAMESPACE = uuid.UUID("6f1c2a4e-8d0b-4c1e-9a57-3e2f8b1d0c42")


def _coded(system: str, code: str, display: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


def link_id(armcd: str) -> str:
    """A FHIR `id` ([A-Za-z0-9-.]) of an arm code."""
    return armcd.replace("_", "-")


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _ref(url: str, kind: str) -> Reference:
    return Reference(reference=url, type=kind)


def conditional_url(kind: str, system: str, value: str) -> str:
    """`Type?identifier=system|value`, the value escaped as FHIR search and then as a URL."""
    escaped = value
    for special in ("\\", "|", ",", "$"):
        escaped = escaped.replace(special, f"\\{special}")
    return f"{kind}?identifier={quote(system, safe=':/.-')}|{quote(escaped, safe='')}"


def blinded_medication_name(study: StudyDefinition) -> str:
    """The one product every blinded kit is, whatever its content: "IMC-002 or placebo"."""
    arms = sorted(study.arms, key=lambda a: (not a.active, a.code))
    return " or ".join(a.name if a.active else a.name.lower() for a in arms)


class _Builder:
    """Collects the entries: fullUrl, resource and the conditional update that loads it."""

    def __init__(self, data: ExportData) -> None:
        self.data = data
        self.entries: list[BundleEntry] = []

    def add(self, resource: Resource, system: str, value: str) -> str:
        """Adds `system|value` as the resource's first identifier, the one its update matches."""
        kind = resource.get_resource_type()
        found = getattr(resource, "identifier", None) or []
        setattr(resource, "identifier", [Identifier(system=system, value=value), *found])  # noqa: B010
        url = _urn(self.data.study.code, kind, system, value)
        request = BundleEntryRequest(method="PUT", url=conditional_url(kind, system, value))
        self.entries.append(BundleEntry(fullUrl=url, resource=resource, request=request))
        return url


def _group(arm: PlannedArm) -> ResearchStudyComparisonGroup:
    code, display = (
        ("experimental", "Experimental")
        if arm.active
        else ("placebo-comparator", "Placebo Comparator")
    )
    return ResearchStudyComparisonGroup(
        linkId=link_id(arm.armcd), name=arm.arm, type=_coded(ARM_TYPE, code, display)
    )


def _organization(site: SiteRecord) -> Organization:
    return Organization(
        active=True, name=site.name, contact=[{"address": {"country": site.country}}]
    )


def _study(data: ExportData, sites: dict[str, str]) -> ResearchStudy:
    study = ResearchStudy(
        status="active",
        title=data.study.name,
        name=data.study.code,
        phase=_coded(PHASE, "phase-1-phase-2", "Phase 1/Phase 2"),
        recruitment=ResearchStudyRecruitment(targetNumber=data.study.total_cap),
        site=[_ref(url, "Organization") for url in sites.values()] or None,
    )
    if not data.blinded:
        arms = arm_table(data.study, data.phase2_dose_mg_per_kg)
        study.comparisonGroup = [_group(a) for a in arms]
    return study


def _medication_key(data: ExportData, kit: KitRecord) -> str:
    if data.blinded or kit.content is None:
        return BLINDED_MEDICATION
    return kit.content if kit.lot is None else f"{kit.content}/{kit.lot}"


def _medication(data: ExportData, kit: KitRecord) -> Medication:
    """Blinded: the one study product. Unblinded: the kit's content, one per lot."""
    lot = None if data.blinded else kit.lot
    return Medication(
        status="active",
        code=CodeableConcept(text=_product(data, kit)),
        doseForm=CodeableConcept(text=DOSE_FORM),
        batch=None if lot is None else MedicationBatch(lotNumber=lot),
    )


def _patient(data: ExportData, subject: SubjectRecord, site_url: str) -> Patient:
    """Only what the IRT holds: sex, year of birth and the site (no name, no full birth date)."""
    gender = {"F": "female", "M": "male"}.get(subject.sex, "unknown")
    return Patient(
        gender=gender,
        birthDate=str(subject.year_of_birth),
        managingOrganization=_ref(site_url, "Organization"),
    )


def _subject(data: ExportData, subject: SubjectRecord, study: str, patient: str) -> ResearchSubject:
    key = usubjid(data.study, subject)
    resource = ResearchSubject(
        status="active",
        study=_ref(study, "ResearchStudy"),
        subject=Reference(
            reference=patient,
            type="Patient",
            identifier=Identifier(system=SUBJECT_SYSTEM, value=key),
            display=key,
        ),
    )
    r = subject.randomization
    if r is None:
        return resource
    resource.identifier = [Identifier(system=RANDOMIZATION_SYSTEM, value=r.number)]
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


def _product(data: ExportData, kit: KitRecord) -> str:
    """What the kit holds, by name: its arm's name, or the blinded product."""
    if data.blinded or kit.content is None:
        return blinded_medication_name(data.study)
    return data.study.arm(kit.content).name


def _by_product(data: ExportData, visit: VisitRecord) -> list[tuple[str, list[KitRecord], Decimal]]:
    """The visit's kits by product, with the dose drawn from them (full vials first, as in EX):
    one group per visit, unless an unblinded visit's kits differ in content."""
    doses = split_dose(visit.dose_mg, len(visit.kits), data.study.drug.vial_strength_mg)
    groups: dict[str, tuple[list[KitRecord], list[Decimal]]] = {}
    for kit, dose in zip(visit.kits, doses, strict=True):
        kits, parts = groups.setdefault(_product(data, kit), ([], []))
        kits.append(kit)
        parts.append(dose)
    return [(name, kits, sum(parts, Decimal(0))) for name, (kits, parts) in groups.items()]


def _administration(
    patient: str, product: str, visit: VisitRecord, dose: Decimal
) -> MedicationAdministration:
    """The dose the IRT calculated for the visit, given on its date (the EDC has what was
    actually infused). The product is named, not referenced: the kits may come from two lots."""
    return MedicationAdministration(
        status="completed",
        medication=CodeableReference(concept=CodeableConcept(text=product)),
        subject=_ref(patient, "Patient"),
        occurenceDateTime=visit.visit_date.isoformat(),
        dosage=MedicationAdministrationDosage(
            text=f"{format(dose.normalize(), 'f')} mg intravenous",
            route=_coded(SNOMED, *INTRAVENOUS),
            dose=Quantity(value=dose, unit="mg", system=UCUM, code="mg"),
        ),
    )


def _dispense(
    patient: str, medication: str, site: str, admin: str, visit: VisitRecord
) -> MedicationDispense:
    return MedicationDispense(
        status="completed",
        medication=CodeableReference(reference=_ref(medication, "Medication")),
        subject=_ref(patient, "Patient"),
        performer=[MedicationDispensePerformer(actor=_ref(site, "Organization"))],
        partOf=[_ref(admin, "MedicationAdministration")],
        quantity=Quantity(value=1, unit="vial"),
        whenHandedOver=visit.visit_date.isoformat(),
    )


def _exposure(
    b: _Builder, subject: SubjectRecord, patient: str, site: str, medications: dict[str, str]
) -> None:
    """Per dosing visit: a MedicationAdministration (dose, route, date) and a
    MedicationDispense per kit in use (kit number, its lot's Medication), part of it."""
    key = usubjid(b.data.study, subject)
    for visit in sorted(subject.visits, key=lambda v: v.visit_date):
        groups = _by_product(b.data, visit)
        for n, (product, kits, dose) in enumerate(groups, start=1):
            value = f"{key}/{visit.visit}" + (f"/{n}" if len(groups) > 1 else "")
            admin = _administration(patient, product, visit, dose)
            admin_url = b.add(admin, ADMINISTRATION_SYSTEM, value)
            for kit in kits:
                medication = medications[_medication_key(b.data, kit)]
                dispense = _dispense(patient, medication, site, admin_url, visit)
                b.add(dispense, KIT_SYSTEM, kit.kit_number)


def fhir_bundle(data: ExportData) -> Bundle:
    b = _Builder(data)
    sites = {s.site_id: b.add(_organization(s), SITE_SYSTEM, s.site_id) for s in data.sites}
    medications: dict[str, str] = {}
    for subject in sorted(data.subjects, key=lambda s: s.subject_id):
        for kit in (k for v in subject.visits for k in v.kits):
            key = _medication_key(data, kit)
            if key not in medications:
                medications[key] = b.add(_medication(data, kit), MEDICATION_SYSTEM, key)
    study_url = b.add(_study(data, sites), REGISTRY, data.study.registry_id)
    for subject in sorted(data.subjects, key=lambda s: s.subject_id):
        key = usubjid(data.study, subject)
        site = sites[subject.site_id]
        patient = b.add(_patient(data, subject, site), SUBJECT_SYSTEM, key)
        b.add(_subject(data, subject, study_url, patient), SUBJECT_SYSTEM, key)
        _exposure(b, subject, patient, site, medications)
    return Bundle(
        type="transaction",
        timestamp=data.created_at.isoformat(timespec="seconds"),
        identifier=Identifier(
            system="urn:irt:export",
            value=_urn(
                data.study.code,
                "blinded" if data.blinded else "unblinded",
                data.created_at.isoformat(),
            ),
        ),
        entry=b.entries,
    )


def fhir_json(data: ExportData) -> str:
    """The bundle as FHIR JSON (indented)."""
    text: str = fhir_bundle(data).model_dump_json(indent=2)
    return text
