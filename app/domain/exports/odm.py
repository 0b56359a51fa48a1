"""CDISC ODM 1.3.2 XML with odmlib: the randomization event, form, item group and items in the
metadata, one SubjectData per subject with its SiteRef, and the sites as AdminData Locations.
Valid against the ODM 1.3.2 schema that odmlib ships (checked in the tests)."""

from __future__ import annotations

import threading

import odmlib.ns_registry as ns
import odmlib.odm_1_3_2.model as odm

from app.domain.errors import InvalidInput
from app.domain.exports.records import ExportData, SubjectRecord, arm_table, usubjid

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
MDV_OID = "MDV.IRT.RAND"
EVENT_OID = "SE.RAND"
FORM_OID = "F.RAND"
GROUP_OID = "IG.RAND"
ARM_CODELIST_OID = "CL.ARMCD"
# (OID, name, data type, length, description); the arm items only in the unblinded export
ITEMS = (
    ("IT.RANDNO", "RANDNO", "text", 20, "Randomization number"),
    ("IT.RANDDTC", "RANDDTC", "datetime", None, "Date and time of randomization (UTC)"),
    ("IT.STAGE", "STAGE", "text", 10, "Stage (phase_ib or phase_ii)"),
    ("IT.COHORT", "COHORT", "text", 8, "Phase Ib cohort"),
    ("IT.STRATUM", "STRATUM", "text", 64, "Stratum"),
)
SUBJECT_KEYS = ("usubjid", "subject-label")
"""What `SubjectKey` holds: USUBJID (the default, unique by construction) or the subject label
the EDC shows, the screening number the site entered (an EDC that matches subjects by label)."""
ARM_ITEMS = (
    ("IT.ARMCD", "ARMCD", "text", 20, "Planned arm code"),
    ("IT.ARM", "ARM", "text", 200, "Description of planned arm"),
)
registry_lock = threading.Lock()


def _description(text: str) -> odm.Description:
    return odm.Description(TranslatedText=[odm.TranslatedText(_content=text, lang="en")])


def _location_oid(site_id: str) -> str:
    return f"LOC.{site_id}"


def _metadata(data: ExportData) -> odm.MetaDataVersion:
    items = ITEMS if data.blinded else ITEMS + ARM_ITEMS
    name = "IRT randomization" + (" (blinded)" if data.blinded else "")
    mdv = odm.MetaDataVersion(OID=MDV_OID, Name=name)
    mdv.Protocol = odm.Protocol(
        StudyEventRef=[odm.StudyEventRef(StudyEventOID=EVENT_OID, OrderNumber=1, Mandatory="No")]
    )
    mdv.StudyEventDef.append(
        odm.StudyEventDef(
            OID=EVENT_OID,
            Name="Randomization",
            Repeating="No",
            Type="Scheduled",
            FormRef=[odm.FormRef(FormOID=FORM_OID, OrderNumber=1, Mandatory="Yes")],
        )
    )
    mdv.FormDef.append(
        odm.FormDef(
            OID=FORM_OID,
            Name="Randomization",
            Repeating="No",
            ItemGroupRef=[odm.ItemGroupRef(ItemGroupOID=GROUP_OID, OrderNumber=1, Mandatory="Yes")],
        )
    )
    refs = [
        odm.ItemRef(ItemOID=oid, OrderNumber=i, Mandatory="No" if oid == "IT.COHORT" else "Yes")
        for i, (oid, *_) in enumerate(items, start=1)
    ]
    mdv.ItemGroupDef.append(
        odm.ItemGroupDef(OID=GROUP_OID, Name="Randomization", Repeating="No", ItemRef=refs)
    )
    for oid, item_name, data_type, length, text in items:
        item = odm.ItemDef(
            OID=oid, Name=item_name, DataType=data_type, Description=_description(text)
        )
        if length is not None:
            item.Length = length
        if oid == "IT.ARMCD":
            item.CodeListRef = odm.CodeListRef(CodeListOID=ARM_CODELIST_OID)
        mdv.ItemDef.append(item)
    if not data.blinded:
        codes = [
            odm.CodeListItem(CodedValue=arm.armcd, OrderNumber=i, Decode=_decode(arm.arm))
            for i, arm in enumerate(arm_table(data.study, data.phase2_dose_mg_per_kg), start=1)
        ]
        mdv.CodeList.append(
            odm.CodeList(
                OID=ARM_CODELIST_OID, Name="Planned Arm Code", DataType="text", CodeListItem=codes
            )
        )
    return mdv


def _decode(text: str) -> odm.Decode:
    return odm.Decode(TranslatedText=[odm.TranslatedText(_content=text, lang="en")])


def _values(data: ExportData, subject: SubjectRecord) -> list[tuple[str, str]]:
    r = subject.randomization
    assert r is not None
    values = [
        ("IT.RANDNO", r.number),
        ("IT.RANDDTC", r.randomized_at.isoformat(timespec="seconds")),
        ("IT.STAGE", r.stage),
        ("IT.STRATUM", r.stratum),
    ]
    if r.stage == "phase_ib":
        values.insert(3, ("IT.COHORT", r.scope))
    if not data.blinded and r.arm is not None:
        armcd = f"{r.scope}{r.arm}"
        table = {a.armcd: a.arm for a in arm_table(data.study, data.phase2_dose_mg_per_kg)}
        values += [("IT.ARMCD", armcd), ("IT.ARM", table[armcd])]
    return values


def subject_keys(data: ExportData, subject_key: str) -> dict[int, str]:
    """subject id -> SubjectKey; labels must be unique across sites to key by them."""
    if subject_key == "usubjid":
        return {s.subject_id: usubjid(data.study, s) for s in data.subjects}
    sites: dict[str, list[str]] = {}
    for s in data.subjects:
        sites.setdefault(s.screening_number, []).append(s.site_id)
    shared = {label: ids for label, ids in sites.items() if len(ids) > 1}
    if shared:
        label, ids = sorted(shared.items())[0]
        raise InvalidInput(
            "subject_label_not_unique",
            f"The subject label {label!r} is used at sites {', '.join(sorted(ids))} "
            f"({len(shared)} label(s) shared in all): ODM needs one SubjectKey per subject. "
            "Export with subject_key=usubjid, which names the site.",
        )
    return {s.subject_id: s.screening_number for s in data.subjects}


def _subject(data: ExportData, subject: SubjectRecord, key: str) -> odm.SubjectData:
    element = odm.SubjectData(
        SubjectKey=key,
        SiteRef=odm.SiteRef(LocationOID=_location_oid(subject.site_id)),
    )
    if subject.randomization is not None:
        items = [odm.ItemData(ItemOID=oid, Value=value) for oid, value in _values(data, subject)]
        group = odm.ItemGroupData(ItemGroupOID=GROUP_OID, ItemData=items)
        form = odm.FormData(FormOID=FORM_OID, ItemGroupData=[group])
        element.StudyEventData.append(odm.StudyEventData(StudyEventOID=EVENT_OID, FormData=[form]))
    return element


def odm_xml(data: ExportData, subject_key: str = "usubjid") -> str:
    """The whole document (a Snapshot) as an XML string with its declaration; `subject_key`
    is one of `SUBJECT_KEYS`."""
    keys = subject_keys(data, subject_key)
    study_oid = data.study.code
    created = data.created_at.isoformat(timespec="seconds")
    study = odm.Study(
        OID=study_oid,
        GlobalVariables=odm.GlobalVariables(
            StudyName=odm.StudyName(_content=data.study.code),
            StudyDescription=odm.StudyDescription(_content=data.study.name),
            ProtocolName=odm.ProtocolName(_content=data.study.registry_id),
        ),
        MetaDataVersion=[_metadata(data)],
    )
    locations = [
        odm.Location(
            OID=_location_oid(site.site_id),
            Name=site.name,
            LocationType="Site",
            MetaDataVersionRef=[
                odm.MetaDataVersionRef(
                    StudyOID=study_oid,
                    MetaDataVersionOID=MDV_OID,
                    EffectiveDate=data.created_at.date().isoformat(),
                )
            ],
        )
        for site in data.sites
    ]
    subjects = sorted(data.subjects, key=lambda s: keys[s.subject_id])
    document = odm.ODM(
        FileOID=f"{study_oid}.IRT.{'BLINDED.' if data.blinded else ''}{created}",
        FileType="Snapshot",
        Granularity="All",
        CreationDateTime=created,
        ODMVersion="1.3.2",
        Originator="IMC-002 IRT",
        SourceSystem="IRT",
        Study=[study],
        AdminData=[odm.AdminData(StudyOID=study_oid, Location=locations)],
        ClinicalData=[
            odm.ClinicalData(
                StudyOID=study_oid,
                MetaDataVersionOID=MDV_OID,
                SubjectData=[_subject(data, s, keys[s.subject_id]) for s in subjects],
            )
        ],
    )
    with registry_lock:  # odmlib keeps the namespace in a process-wide registry
        ns.NamespaceRegistry(  # type: ignore[no-untyped-call]
            prefix="odm", uri=ODM_NAMESPACE, is_default=True, is_reset=True
        )
        text: str = document.to_xml_string(xml_declaration=True)
    return text
