"""Define-XML 2.1 for the SDTM datasets, built with odmlib's Define-XML 2.1 model: the
standards (SDTMIG 3.4, CDISC SDTM controlled terminology), one ItemGroupDef per dataset with
its leaf (the XPT file), one ItemDef per variable with its origin and comment, and the code
lists of the values the datasets hold. Valid against the Define-XML 2.1 schema that odmlib
ships (checked in the tests)."""

from __future__ import annotations

import odmlib.define_2_1.model as define
import odmlib.ns_registry as ns
import odmlib.odm_1_3_2.model as odm

from app.domain.exports.odm import ODM_NAMESPACE, registry_lock
from app.domain.exports.records import ExportData
from app.domain.exports.sdtm_variables import Dataset, Variable

DEFINE_NAMESPACE = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NAMESPACE = "http://www.w3.org/1999/xlink"
MDV_OID = "MDV.IRT.SDTM"
IG_STANDARD = "STD.SDTMIG.3.4"
CT_STANDARD = "STD.CT.SDTM"
CT_VERSION = "2024-09-27"
"""The CDISC SDTM controlled terminology package the coded values were checked against."""
EXTERNAL_CODELISTS = {"COUNTRY": ("ISO 3166-1 alpha-3", "2020")}
SPONSOR_CODELISTS = {"ARMCD", "EXTRT"}
"""Code lists of this study's own values (not CDISC terminology)."""


def _text(text: str) -> define.Description:
    return define.Description(TranslatedText=[define.TranslatedText(_content=text, lang="en")])


def _item_oid(dataset: Dataset, var: Variable) -> str:
    return f"IT.{dataset.name.upper()}.{var.name}"


def _length(dataset: Dataset, var: Variable) -> int:
    """The longest value (at least 1) for text, as in the XPT file; 8 for numbers."""
    if var.type == "Num":
        return 8
    return max((len(r[var.name]) for r in dataset.rows), default=1) or 1


def _digits(dataset: Dataset, var: Variable) -> int:
    decimals = [len(r[var.name].partition(".")[2]) for r in dataset.rows if r[var.name]]
    return max(decimals, default=0)


def _origin(var: Variable) -> define.Origin:
    if var.origin in ("Collected", "Not Available"):
        return define.Origin(
            Type="Collected" if var.origin == "Collected" else "Not Available",
            Source="Investigator" if var.origin == "Collected" else None,
        )
    return define.Origin(Type=var.origin, Source="Sponsor")


def _codelist_oid(dataset: Dataset, var: Variable) -> str:
    assert var.codelist is not None
    if var.codelist in SPONSOR_CODELISTS or var.codelist == "EPOCH":
        return f"CL.{var.codelist}"
    return f"CL.{dataset.name.upper()}.{var.codelist}"


def _item_def(
    dataset: Dataset, var: Variable, comments: list[define.CommentDef], codelists: set[str]
) -> define.ItemDef:
    oid = _item_oid(dataset, var)
    item = define.ItemDef(
        OID=oid,
        Name=var.name,
        DataType=var.data_type,
        SASFieldName=var.name,
        Description=_text(var.label),
    )
    if var.data_type in ("text", "integer", "float"):
        item.Length = _length(dataset, var)
    if var.data_type == "float":
        item.SignificantDigits = _digits(dataset, var)
    if var.comment:
        comment_oid = f"COM.{dataset.name.upper()}.{var.name}"
        comments.append(define.CommentDef(OID=comment_oid, Description=_text(var.comment)))
        item.CommentOID = comment_oid
    if var.codelist is not None and _codelist_oid(dataset, var) in codelists:
        item.CodeListRef = define.CodeListRef(CodeListOID=_codelist_oid(dataset, var))
    item.Origin = [_origin(var)]
    return item


def _group(dataset: Dataset) -> define.ItemGroupDef:
    name = dataset.name.upper()
    meta = dataset.meta
    refs = [
        odm.ItemRef(
            ItemOID=_item_oid(dataset, var),
            OrderNumber=i,
            Mandatory="Yes" if var.core == "Req" else "No",
            Role=var.role,
            **({"KeySequence": meta.keys.index(var.name) + 1} if var.name in meta.keys else {}),
        )
        for i, var in enumerate(dataset.variables, start=1)
    ]
    return define.ItemGroupDef(
        OID=f"IG.{name}",
        Name=name,
        Repeating="No" if name == "DM" else "Yes",
        IsReferenceData="Yes" if meta.reference_data else "No",
        SASDatasetName=name,
        Domain=name,
        Purpose="Tabulation",
        Structure=meta.structure,
        ArchiveLocationID=f"LF.{name}",
        StandardOID=IG_STANDARD,
        Description=_text(meta.label),
        ItemRef=refs,
        Class=define.Class(Name=meta.sdtm_class),
        leaf=define.leaf(
            ID=f"LF.{name}",
            href=f"{dataset.name}.xpt",
            title=define.title(_content=f"{dataset.name}.xpt"),
        ),
    )


def _codelists(sets: list[Dataset]) -> list[define.CodeList]:
    """One code list per (dataset, codelist) with the values the dataset holds, shared lists
    (ARMCD, EPOCH, EXTRT) merged across datasets; COUNTRY refers to ISO 3166."""
    values: dict[str, tuple[str, set[str]]] = {}
    for dataset in sets:
        for var in dataset.variables:
            if var.codelist is None:
                continue
            oid = _codelist_oid(dataset, var)
            _, seen = values.setdefault(oid, (var.codelist, set()))
            seen.update(r[var.name] for r in dataset.rows if r[var.name])
    lists = []
    for oid, (name, seen) in sorted(values.items()):
        codelist = define.CodeList(OID=oid, Name=name, DataType="text")
        if name in EXTERNAL_CODELISTS:
            dictionary, version = EXTERNAL_CODELISTS[name]
            codelist.ExternalCodeList = define.ExternalCodeList(
                Dictionary=dictionary, Version=version
            )
        else:
            if name not in SPONSOR_CODELISTS:
                codelist.StandardOID = CT_STANDARD
            items = [
                define.EnumeratedItem(CodedValue=v, OrderNumber=i)
                for i, v in enumerate(sorted(seen), start=1)
            ]
            if not items:  # a list the data does not use yet still needs one entry
                continue
            codelist.EnumeratedItem = items
        lists.append(codelist)
    return lists


def define_xml(data: ExportData, sets: list[Dataset]) -> str:
    """The Define-XML 2.1 document (a Snapshot) describing `sets`, with its declaration."""
    created = data.created_at.isoformat(timespec="seconds")
    comments: list[define.CommentDef] = []
    lists = _codelists(sets)
    known = {str(c.OID) for c in lists}
    items = [_item_def(d, var, comments, known) for d in sets for var in d.variables]
    variant = "blinded " if data.blinded else ""
    mdv = define.MetaDataVersion(
        OID=MDV_OID,
        Name=f"IMC-002 IRT SDTM {variant}datasets",
        Description=f"SDTM {variant}datasets of the IRT (randomization, exposure)",
        DefineVersion="2.1.0",
        Standards=define.Standards(
            Standard=[
                define.Standard(
                    OID=IG_STANDARD, Name="SDTMIG", Type="IG", Version="3.4", Status="Final"
                ),
                define.Standard(
                    OID=CT_STANDARD,
                    Name="CDISC/NCI",
                    Type="CT",
                    PublishingSet="SDTM",
                    Version=CT_VERSION,
                    Status="Final",
                ),
            ]
        ),
        ItemGroupDef=[_group(d) for d in sets],
        ItemDef=items,
        CodeList=lists,
        CommentDef=comments,
    )
    document = define.ODM(
        FileOID=f"{data.study.code}.DEFINE.{'BLINDED.' if data.blinded else ''}{created}",
        FileType="Snapshot",
        CreationDateTime=created,
        ODMVersion="1.3.2",
        Originator="IMC-002 IRT",
        SourceSystem="IRT",
        Context="Submission",
        Study=define.Study(
            OID=data.study.code,
            GlobalVariables=define.GlobalVariables(
                StudyName=define.StudyName(_content=data.study.code),
                StudyDescription=define.StudyDescription(_content=data.study.name),
                ProtocolName=define.ProtocolName(_content=data.study.registry_id),
            ),
            MetaDataVersion=mdv,
        ),
    )
    with registry_lock:  # odmlib keeps the namespaces in a process-wide registry
        ns.NamespaceRegistry(  # type: ignore[no-untyped-call]
            prefix="odm", uri=ODM_NAMESPACE, is_default=True, is_reset=True
        )
        ns.NamespaceRegistry(prefix="def", uri=DEFINE_NAMESPACE)  # type: ignore[no-untyped-call]
        ns.NamespaceRegistry(prefix="xlink", uri=XLINK_NAMESPACE)  # type: ignore[no-untyped-call]
        text: str = document.to_xml_string(xml_declaration=True)
    return text
