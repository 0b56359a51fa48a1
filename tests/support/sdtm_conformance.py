"""An SDTMIG 3.4 conformance check of an SDTM export, the rules that DM, DS, EX, TA, TE and TV
meet in Pinnacle 21 and CDISC CORE, written from the implementation guide and independent of
the builders' own metadata (app/domain/exports/sdtm_variables.py): a regression there is
caught here. `check_package` reads the XPT files back with pyreadstat and the define.xml, and
returns the findings ("rule: what, where"); an empty list is a pass. The rules are named for
what they check (Pinnacle 21 and CORE number them differently, and renumber them)."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pycountry
import pyreadstat
import xmlschema
from odmlib.schema_manager import get_schema_path

Row = dict[str, str]
_C = ("STUDYID", "DOMAIN")
_S = (*_C, "USUBJID")
SPEC: dict[str, dict[str, tuple[str, ...]]] = {
    # SDTMIG 3.4 core designations of the variables these domains may hold
    "DM": {
        "Req": (*_S, "SUBJID", "SITEID", "SEX", "COUNTRY"),
        "Exp": ("RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC", "RFPENDTC", "DTHDTC",
                "DTHFL", "AGE", "AGEU", "RACE", "ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS",
                "ACTARMUD"),
        "Perm": ("INVID", "INVNAM", "BRTHDTC", "AGETXT", "ETHNIC", "DMDTC", "DMDY"),
    },
    "DS": {
        "Req": (*_S, "DSSEQ", "DSTERM", "DSDECOD"),
        "Exp": ("DSSTDTC",),
        "Perm": ("DSGRPID", "DSREFID", "DSSPID", "DSCAT", "DSSCAT", "EPOCH", "DSDTC", "DSSTDY",
                 "VISITNUM", "VISIT"),
    },
    "EX": {
        "Req": (*_S, "EXSEQ", "EXTRT"),
        "Exp": ("EXDOSE", "EXDOSU", "EXDOSFRM", "EXSTDTC"),
        "Perm": ("EXGRPID", "EXREFID", "EXSPID", "EXLNKID", "EXCAT", "EXDOSTXT", "EXDOSFRQ",
                 "EXROUTE", "EXLOT", "EXLOC", "VISITNUM", "VISIT", "EPOCH", "EXENDTC", "EXSTDY",
                 "EXENDY"),
    },
    "TA": {
        "Req": (*_C, "ARMCD", "ARM", "TAETORD", "ETCD", "EPOCH"),
        "Exp": ("TABRANCH", "TATRANS"),
        "Perm": ("ELEMENT",),
    },
    "TE": {"Req": (*_C, "ETCD", "ELEMENT", "TESTRL"), "Exp": (), "Perm": ("TEENRL", "TEDUR")},
    "TV": {
        "Req": (*_C, "VISITNUM", "TVSTRL"),
        "Exp": ("ARMCD",),
        "Perm": ("VISIT", "VISITDY", "ARM", "TVENRL"),
    },
}  # fmt: skip
LABELS = {
    "STUDYID": "Study Identifier", "DOMAIN": "Domain Abbreviation",
    "USUBJID": "Unique Subject Identifier", "SUBJID": "Subject Identifier for the Study",
    "RFSTDTC": "Subject Reference Start Date/Time", "RFENDTC": "Subject Reference End Date/Time",
    "RFXSTDTC": "Date/Time of First Study Treatment",
    "RFXENDTC": "Date/Time of Last Study Treatment", "RFICDTC": "Date/Time of Informed Consent",
    "RFPENDTC": "Date/Time of End of Participation", "DTHDTC": "Date/Time of Death",
    "DTHFL": "Subject Death Flag", "SITEID": "Study Site Identifier",
    "BRTHDTC": "Date/Time of Birth", "AGE": "Age", "AGETXT": "Age Range", "AGEU": "Age Units",
    "SEX": "Sex", "RACE": "Race", "ARMCD": "Planned Arm Code",
    "ARM": "Description of Planned Arm", "ACTARMCD": "Actual Arm Code",
    "ACTARM": "Description of Actual Arm", "ARMNRS": "Reason Arm and/or Actual Arm is Null",
    "ACTARMUD": "Description of Unplanned Actual Arm", "COUNTRY": "Country",
    "DSSEQ": "Sequence Number", "DSREFID": "Reference ID",
    "DSTERM": "Reported Term for the Disposition Event",
    "DSDECOD": "Standardized Disposition Term", "DSCAT": "Category for Disposition Event",
    "DSSCAT": "Subcategory for Disposition Event", "EPOCH": "Epoch",
    "DSDTC": "Date/Time of Collection", "DSSTDTC": "Start Date/Time of Disposition Event",
    "EXSEQ": "Sequence Number", "EXREFID": "Reference ID", "EXTRT": "Name of Treatment",
    "EXDOSE": "Dose", "EXDOSU": "Dose Units", "EXDOSFRM": "Dose Form",
    "EXROUTE": "Route of Administration", "EXLOT": "Lot Number", "VISITNUM": "Visit Number",
    "VISIT": "Visit Name", "EXSTDTC": "Start Date/Time of Treatment",
    "EXENDTC": "End Date/Time of Treatment", "TAETORD": "Planned Order of Element within Arm",
    "ETCD": "Element Code", "ELEMENT": "Description of Element", "TABRANCH": "Branch",
    "TATRANS": "Transition Rule", "TESTRL": "Rule for Start of Element",
    "TEENRL": "Rule for End of Element", "TEDUR": "Planned Duration of Element",
    "VISITDY": "Planned Study Day of Visit", "TVSTRL": "Visit Start Rule",
}  # fmt: skip
NUMERIC = {"DSSEQ", "EXSEQ", "EXDOSE", "AGE", "VISITNUM", "VISITDY", "TAETORD"}
CT: dict[str, frozenset[str]] = {
    # CDISC SDTM controlled terminology (the terms of each codelist these exports may use)
    "SEX": frozenset({"F", "M", "U", "INTERSEX"}),
    "AGEU": frozenset({"YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS"}),
    "EXROUTE": frozenset({"INTRAVENOUS", "SUBCUTANEOUS", "ORAL", "INTRAMUSCULAR"}),
    "EXDOSFRM": frozenset({"INJECTION, SOLUTION", "INJECTION, POWDER, LYOPHILIZED, FOR "
                           "SOLUTION", "TABLET", "CAPSULE"}),
    "EXDOSU": frozenset({"mg", "mg/kg", "mL", "ug"}),
    "DSCAT": frozenset({"DISPOSITION EVENT", "PROTOCOL MILESTONE", "OTHER EVENT"}),
    "DSDECOD": frozenset({
        # NCOMPLT, protocol milestones and other events
        "ADVERSE EVENT", "COMPLETED", "DEATH", "LACK OF EFFICACY", "LOST TO FOLLOW-UP",
        "OTHER", "PHYSICIAN DECISION", "PREGNANCY", "PROTOCOL DEVIATION", "SCREEN FAILURE",
        "STUDY TERMINATED BY SPONSOR", "WITHDRAWAL BY SUBJECT", "RANDOMIZED",
        "INFORMED CONSENT OBTAINED", "TREATMENT UNBLINDED",
    }),
    "EPOCH": frozenset({"SCREENING", "RUN-IN", "TREATMENT", "FOLLOW-UP", "WASHOUT"}),
    "ARMNRS": frozenset({"ASSIGNED, NOT TREATED", "NOT ASSIGNED", "SCREEN FAILURE",
                         "UNPLANNED TREATMENT", "NOT TREATED"}),
    "DTHFL": frozenset({"Y"}),
}  # fmt: skip
ISO_8601 = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:\d{2}|Z)?)?)?)?$"
)
NAME = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")


@dataclass
class Package:
    """What the export holds: each dataset's rows (every value a string, "" for null), its
    XPT metadata and the define.xml text."""

    rows: dict[str, list[Row]]
    labels: dict[str, dict[str, str]]
    widths: dict[str, dict[str, int]]
    table_names: dict[str, str]
    file_labels: dict[str, str]
    define: str


def _text(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: a null number
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return "" if value is None else str(value)


def read_package(content: bytes) -> Package:
    """The zip of an `sdtm-xpt` export, each XPT read back with pyreadstat."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    package = Package({}, {}, {}, {}, {}, archive.read("define.xml").decode("utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        for member in archive.namelist():
            if not member.endswith(".xpt"):
                continue
            path = Path(folder) / member
            path.write_bytes(archive.read(member))
            frame, meta = pyreadstat.read_xport(str(path))
            name = member.removesuffix(".xpt").upper()
            package.rows[name] = [
                {col: _text(v) for col, v in zip(frame.columns, values, strict=True)}
                for values in frame.itertuples(index=False)
            ]
            package.labels[name] = dict(zip(meta.column_names, meta.column_labels, strict=True))
            package.widths[name] = dict(meta.variable_storage_width)
            package.table_names[name] = meta.table_name
            package.file_labels[name] = meta.file_label
    return package


def _structure(p: Package) -> list[str]:
    found = []
    for name, spec in SPEC.items():
        if name not in p.rows:
            found.append(f"dataset-present: dataset {name} missing")
            continue
        columns = list(p.labels[name])
        if p.table_names[name] != name or len(name) > 8:
            found.append(f"label: {name} XPT member name {p.table_names[name]!r}")
        if not 0 < len(p.file_labels[name]) <= 40:
            found.append(f"dataset-label: {name} dataset label {p.file_labels[name]!r}")
        for var in (*spec["Req"], *spec["Exp"]):
            if var not in columns:
                found.append(f"req-exp-present: {name}.{var} (required or expected) missing")
        allowed = {*spec["Req"], *spec["Exp"], *spec["Perm"]}
        for var in columns:
            label = p.labels[name][var]
            if var not in allowed:
                found.append(
                    f"known-variable: {name}.{var} is not an SDTMIG 3.4 variable of {name}"
                )
            if not NAME.match(var):
                found.append(f"name-length: {name}.{var} name longer than 8 or not alphanumeric")
            if len(label) > 40 or label != LABELS.get(var, label):
                found.append(f"label: {name}.{var} label {label!r}")
            if p.widths[name][var] > 200:
                found.append(f"char-length: {name}.{var} longer than 200 characters")
        for i, row in enumerate(p.rows[name], start=1):
            for var in spec["Req"]:
                if var in row and not row[var]:
                    found.append(f"req-not-null: {name}.{var} null in record {i}")
            if row.get("DOMAIN") != name:
                found.append(f"domain-value: {name} record {i} DOMAIN {row.get('DOMAIN')!r}")
            for var, value in row.items():
                if var.endswith("DTC") and value and not ISO_8601.match(value):
                    found.append(f"iso8601: {name}.{var} {value!r} is not ISO 8601")
                if var in CT and value and value not in CT[var]:
                    found.append(
                        f"controlled-terms: {name}.{var} {value!r} not in controlled terms"
                    )
                if var == "COUNTRY" and pycountry.countries.get(alpha_3=value) is None:
                    found.append(f"country: {name}.COUNTRY {value!r} is not ISO 3166 alpha-3")
    return found


def _unique(p: Package) -> list[str]:
    found = []
    keys = {"DM": ("USUBJID",), "DS": ("USUBJID", "DSSEQ"), "EX": ("USUBJID", "EXSEQ"),
            "TA": ("ARMCD", "TAETORD"), "TE": ("ETCD",), "TV": ("VISITNUM", "ARMCD")}  # fmt: skip
    for name, key in keys.items():
        counts = Counter(tuple(r[k] for k in key) for r in p.rows.get(name, []))
        found += [f"unique-keys: {name} duplicate {key} {k}" for k, n in counts.items() if n > 1]
    studies = {r["STUDYID"] for rows in p.rows.values() for r in rows}
    if len(studies) > 1:
        found.append(f"one-studyid: several STUDYID values {sorted(studies)}")
    return found


def _arms(p: Package) -> list[str]:
    found = []
    ta = {r["ARMCD"]: r["ARM"] for r in p.rows["TA"]}
    te = {r["ETCD"]: r["ELEMENT"] for r in p.rows["TE"]}
    for r in p.rows["TA"]:
        if te.get(r["ETCD"]) != r["ELEMENT"]:
            found.append(f"ta-element-in-te: TA element {r['ETCD']} {r['ELEMENT']!r} not as in TE")
    for r in p.rows["DM"]:
        who = r["USUBJID"]
        for code, name in (("ARMCD", "ARM"), ("ACTARMCD", "ACTARM")):
            if r[code] and ta.get(r[code]) != r[name]:
                found.append(f"arm-in-ta: DM {who} {code} {r[code]!r} / {name} not in TA")
            if bool(r[code]) != bool(r[name]):
                found.append(f"arm-code-and-name: DM {who} {code} and {name} not null together")
        if (not r["ARMCD"] or not r["ACTARMCD"]) != bool(r["ARMNRS"]):
            found.append(f"armnrs: DM {who} ARMNRS must say why an arm is null, and only then")
        if (r["ARMNRS"] == "UNPLANNED TREATMENT") != bool(r["ACTARMUD"]):
            found.append(f"actarmud: DM {who} ACTARMUD with UNPLANNED TREATMENT only")
        if bool(r["DTHFL"]) != bool(r["DTHDTC"]):
            found.append(f"death-flag: DM {who} DTHFL and DTHDTC disagree")
        if r["AGE"] and r["AGETXT"]:
            found.append(f"age-or-agetxt: DM {who} AGE and AGETXT both populated")
        if (r["AGE"] or r["AGETXT"]) and not r["AGEU"]:
            found.append(f"ageu: DM {who} AGEU missing")
        if r["RFSTDTC"] and r["RFENDTC"] and r["RFENDTC"] < r["RFSTDTC"]:
            found.append(f"rfendtc-after-rfstdtc: DM {who} RFENDTC before RFSTDTC")
    return found


def _subjects(p: Package) -> list[str]:
    found = []
    dm = {r["USUBJID"]: r for r in p.rows["DM"]}
    for name in ("DS", "EX"):
        for who in {r["USUBJID"] for r in p.rows[name]} - set(dm):
            found.append(f"subject-in-dm: {name} subject {who} not in DM")
    tv = {r["VISITNUM"]: r["VISIT"] for r in p.rows["TV"]}
    doses: dict[str, list[str]] = defaultdict(list)
    for r in p.rows["EX"]:
        doses[r["USUBJID"]].append(r["EXSTDTC"])
        if r["VISITNUM"] not in tv or tv[r["VISITNUM"]] != r["VISIT"]:
            found.append(
                f"visit-in-tv: EX {r['USUBJID']} VISITNUM {r['VISITNUM']} / VISIT not in TV"
            )
        if r["EXENDTC"] and r["EXENDTC"] < r["EXSTDTC"]:
            found.append(f"exendtc-after-exstdtc: EX {r['USUBJID']} EXENDTC before EXSTDTC")
    randomized = {r["USUBJID"]: r["DSSTDTC"] for r in p.rows["DS"] if r["DSDECOD"] == "RANDOMIZED"}
    for who, r in dm.items():
        first = min(doses[who], default="")
        last = max(doses[who], default="")
        if r["RFSTDTC"] != first or r["RFXSTDTC"] != first or r["RFXENDTC"] != last:
            found.append(f"rfstdtc-first-dose: DM {who} RFSTDTC/RFXSTDTC/RFXENDTC {r['RFSTDTC']!r} "
                         f"not the first and last EXSTDTC {first!r} {last!r}")  # fmt: skip
        if r["ARMCD"] and who not in randomized:
            found.append(f"randomized-in-ds: DM {who} has an arm but no RANDOMIZED record in DS")
        if who in randomized and first and randomized[who][:10] > first:
            found.append(
                f"randomized-before-dose: {who} randomized {randomized[who]} after the first "
                f"dose {first}"
            )
        if r["RFPENDTC"] and last and last > r["RFPENDTC"][:10]:
            found.append(f"dose-before-rfpendtc: DM {who} dosed after RFPENDTC")
    return found


def _define(p: Package, schema: xmlschema.XMLSchema) -> list[str]:
    errors = [f"define-schema: define.xml {e.reason}" for e in schema.iter_errors(p.define)]
    if errors:
        return errors[:5]
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
    root = ElementTree.fromstring(p.define)
    items = {i.get("OID"): i for i in root.iter(f"{{{ns['odm']}}}ItemDef")}
    found = []
    for name in p.rows:
        group = root.find(f".//odm:ItemGroupDef[@Name='{name}']", ns)
        if group is None:
            found.append(f"define-dataset: define.xml has no ItemGroupDef for {name}")
            continue
        defined = [items[ref.get("ItemOID")] for ref in group.iter(f"{{{ns['odm']}}}ItemRef")]
        if [i.get("Name") for i in defined] != list(p.labels[name]):
            found.append(
                f"define-variables: define.xml variables of {name} not those of the XPT file"
            )
        for item in defined:
            var = item.get("Name") or ""
            text = item.findtext("odm:Description/odm:TranslatedText", namespaces=ns)
            if text != p.labels[name].get(var):
                found.append(f"define-label: define.xml label of {name}.{var} {text!r}")
            length = item.get("Length")
            longest = max((len(r[var]) for r in p.rows[name]), default=0)
            if length and var not in NUMERIC and int(length) < longest:
                found.append(f"define-length: define.xml Length of {name}.{var} below the data's")
    return found


def check_package(package: Package, define_schema: xmlschema.XMLSchema) -> list[str]:
    """Every finding of the rules above; [] when the export conforms."""
    found = _structure(package)
    if any(f.startswith("dataset-present") for f in found):
        return found
    return (
        found
        + _unique(package)
        + _arms(package)
        + _subjects(package)
        + _define(package, define_schema)
    )


def define_schema() -> xmlschema.XMLSchema:
    """The Define-XML 2.1 schema (CDISC's, as odmlib ships it); a few seconds to load."""
    return xmlschema.XMLSchema(get_schema_path("define", "2.1"))
