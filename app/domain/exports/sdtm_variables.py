"""The variables of the SDTM datasets with their SDTMIG 3.4 metadata (label, core, role) and
their define descriptions (origin, data type, comment), one table per dataset, and the
datasets' own metadata. Conventions and choices: docs/exports.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Row = dict[str, str]
Core = Literal["Req", "Exp", "Perm"]
DataType = Literal["text", "integer", "float", "date", "datetime", "partialDate", "partialDatetime"]


@dataclass(frozen=True)
class Variable:
    """A column, its SDTMIG core and its define description."""

    name: str
    label: str
    core: Core
    role: str
    origin: str
    data_type: DataType = "text"
    comment: str = ""
    codelist: str | None = None
    """The controlled terminology codelist its values come from (define.xml), if any."""

    @property
    def type(self) -> Literal["Char", "Num"]:
        return "Num" if self.data_type in ("integer", "float") else "Char"


@dataclass(frozen=True)
class DatasetMeta:
    label: str
    sdtm_class: str
    structure: str
    keys: tuple[str, ...]
    reference_data: bool = False


def _v(
    name: str,
    label: str,
    core: Core,
    role: str,
    origin: str,
    data_type: DataType = "text",
    comment: str = "",
    codelist: str | None = None,
) -> Variable:
    return Variable(name, label, core, role, origin, data_type, comment, codelist)


ID, TOPIC, RQ, SQ, GQ, VQ, TIMING, RULE = (
    "Identifier",
    "Topic",
    "Record Qualifier",
    "Synonym Qualifier",
    "Grouping Qualifier",
    "Variable Qualifier",
    "Timing",
    "Rule",
)
STUDYID = _v("STUDYID", "Study Identifier", "Req", ID, "Assigned")
DOMAIN = _v("DOMAIN", "Domain Abbreviation", "Req", ID, "Assigned")
USUBJID = _v(
    "USUBJID",
    "Unique Subject Identifier",
    "Req",
    ID,
    "Derived",
    comment="STUDYID-SITEID-SUBJID, the site written once when SUBJID begins with it",
)
EPOCH = _v("EPOCH", "Epoch", "Perm", TIMING, "Derived", codelist="EPOCH")
NO_CONSENT = "Not held by the IRT (consent is recorded in the EDC)"

VARIABLES: dict[str, tuple[Variable, ...]] = {
    "dm": (
        STUDYID,
        DOMAIN,
        USUBJID,
        _v(
            "SUBJID",
            "Subject Identifier for the Study",
            "Req",
            TOPIC,
            "Collected",
            "text",
            "Screening number",
        ),
        _v(
            "RFSTDTC",
            "Subject Reference Start Date/Time",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Date of first study treatment (as RFXSTDTC); null if never dosed",
        ),
        _v(
            "RFENDTC",
            "Subject Reference End Date/Time",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Latest of the last dosing visit and the standing disposition events; null if "
            "never randomized",
        ),
        _v(
            "RFXSTDTC",
            "Date/Time of First Study Treatment",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Date of the first dosing visit with a kit",
        ),
        _v(
            "RFXENDTC",
            "Date/Time of Last Study Treatment",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Date of the last dosing visit with a kit",
        ),
        _v(
            "RFICDTC",
            "Date/Time of Informed Consent",
            "Exp",
            RQ,
            "Not Available",
            "date",
            NO_CONSENT,
        ),
        _v(
            "RFPENDTC",
            "Date/Time of End of Participation",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Latest date the IRT recorded for the subject (site's local date)",
        ),
        _v(
            "DTHDTC",
            "Date/Time of Death",
            "Exp",
            RQ,
            "Derived",
            "date",
            "Effective date of a withdrawal for death; else null",
        ),
        _v(
            "DTHFL",
            "Subject Death Flag",
            "Exp",
            RQ,
            "Derived",
            comment="Y for a withdrawal "
            "for death; else null (the IRT learns of deaths only through withdrawals)",
            codelist="NY",
        ),
        _v("SITEID", "Study Site Identifier", "Req", RQ, "Assigned"),
        _v(
            "BRTHDTC",
            "Date/Time of Birth",
            "Perm",
            RQ,
            "Collected",
            "partialDate",
            "Year of birth only (ISO 8601 partial date)",
        ),
        _v(
            "AGE",
            "Age",
            "Exp",
            RQ,
            "Derived",
            "integer",
            "Null: only the year of birth is held; the age range is in AGETXT",
        ),
        _v(
            "AGETXT",
            "Age Range",
            "Perm",
            RQ,
            "Derived",
            comment="Age at RFSTDTC (else the "
            "randomization or registration date) from the year of birth: two possible ages",
        ),
        _v("AGEU", "Age Units", "Exp", VQ, "Assigned", codelist="AGEU"),
        _v("SEX", "Sex", "Req", RQ, "Collected", codelist="SEX"),
        _v(
            "RACE",
            "Race",
            "Exp",
            RQ,
            "Not Available",
            comment="Not collected by the IRT (recorded in the EDC)",
            codelist="RACE",
        ),
        _v(
            "ARMCD",
            "Planned Arm Code",
            "Exp",
            RQ,
            "Assigned",
            comment="IRT allocation (TA); "
            "BLINDED in the blinded export; null with ARMNRS when not assigned",
            codelist="ARMCD",
        ),
        _v(
            "ARM",
            "Description of Planned Arm",
            "Exp",
            SQ,
            "Assigned",
            comment="TA description of ARMCD",
        ),
        _v(
            "ACTARMCD",
            "Actual Arm Code",
            "Exp",
            RQ,
            "Derived",
            comment="From the contents of "
            "the kits in use; null with ARMNRS when not treated or treated off-plan",
            codelist="ARMCD",
        ),
        _v("ACTARM", "Description of Actual Arm", "Exp", SQ, "Derived"),
        _v(
            "ARMNRS",
            "Reason Arm and/or Actual Arm is Null",
            "Exp",
            RQ,
            "Derived",
            codelist="ARMNULRS",
        ),
        _v(
            "ACTARMUD",
            "Description of Unplanned Actual Arm",
            "Exp",
            RQ,
            "Derived",
            comment="The contents of the kits in use when they mix arms",
        ),
        _v(
            "COUNTRY",
            "Country",
            "Req",
            RQ,
            "Derived",
            comment="Site country, ISO 3166-1 alpha-3",
            codelist="COUNTRY",
        ),
    ),
    "ds": (
        STUDYID,
        DOMAIN,
        USUBJID,
        _v("DSSEQ", "Sequence Number", "Req", ID, "Derived", "integer"),
        _v(
            "DSREFID",
            "Reference ID",
            "Perm",
            ID,
            "Assigned",
            comment="Randomization number (randomization record)",
        ),
        _v(
            "DSTERM",
            "Reported Term for the Disposition Event",
            "Req",
            TOPIC,
            "Collected",
            comment="The site's reason (first 200 characters; the whole in the audit trail)",
        ),
        _v("DSDECOD", "Standardized Disposition Term", "Req", SQ, "Assigned", codelist="DSDECOD"),
        _v("DSCAT", "Category for Disposition Event", "Perm", GQ, "Assigned", codelist="DSCAT"),
        _v(
            "DSSCAT",
            "Subcategory for Disposition Event",
            "Perm",
            GQ,
            "Assigned",
            comment="STUDY TREATMENT or STUDY PARTICIPATION for disposition events",
        ),
        EPOCH,
        _v(
            "DSDTC",
            "Date/Time of Collection",
            "Perm",
            TIMING,
            "Collected",
            "datetime",
            "When the IRT recorded the event, site's local time",
        ),
        _v(
            "DSSTDTC",
            "Start Date/Time of Disposition Event",
            "Exp",
            TIMING,
            "Collected",
            "partialDatetime",
            "Site's local date and time (randomization, unblinding); "
            "the effective date (disposition); the day 1 visit date when the randomization "
            "was entered after it",
        ),
    ),
    "ex": (
        STUDYID,
        DOMAIN,
        USUBJID,
        _v("EXSEQ", "Sequence Number", "Req", ID, "Derived", "integer"),
        _v("EXREFID", "Reference ID", "Perm", ID, "Assigned", comment="Kit number"),
        _v(
            "EXTRT",
            "Name of Treatment",
            "Req",
            TOPIC,
            "Assigned",
            comment="Content of the kit; BLINDED in the blinded export",
            codelist="EXTRT",
        ),
        _v(
            "EXDOSE",
            "Dose",
            "Exp",
            RQ,
            "Derived",
            "float",
            "Part of the visit dose drawn "
            "from this vial (full vials first), the same for every kit content",
        ),
        _v("EXDOSU", "Dose Units", "Exp", VQ, "Assigned", codelist="UNIT"),
        _v("EXDOSFRM", "Dose Form", "Exp", VQ, "Assigned", codelist="FRM"),
        _v("EXROUTE", "Route of Administration", "Perm", VQ, "Assigned", codelist="ROUTE"),
        _v(
            "EXLOT",
            "Lot Number",
            "Perm",
            RQ,
            "Assigned",
            comment="Kit lot; null in the blinded export",
        ),
        _v(
            "VISITNUM",
            "Visit Number",
            "Perm",
            TIMING,
            "Assigned",
            "integer",
            comment="TV visit number",
        ),
        _v("VISIT", "Visit Name", "Perm", TIMING, "Assigned"),
        EPOCH,
        _v(
            "EXSTDTC",
            "Start Date/Time of Treatment",
            "Exp",
            TIMING,
            "Collected",
            "date",
            "Visit date (site's date)",
        ),
        _v(
            "EXENDTC",
            "End Date/Time of Treatment",
            "Exp",
            TIMING,
            "Collected",
            "date",
            "Visit date (site's date)",
        ),
    ),
    "ta": (
        STUDYID,
        DOMAIN,
        _v(
            "ARMCD",
            "Planned Arm Code",
            "Req",
            TOPIC,
            "Protocol",
            comment="Scope code + arm code; BLINDED in the blinded export",
            codelist="ARMCD",
        ),
        _v("ARM", "Description of Planned Arm", "Req", SQ, "Protocol"),
        _v("TAETORD", "Planned Order of Element within Arm", "Req", TIMING, "Protocol", "integer"),
        _v("ETCD", "Element Code", "Req", RQ, "Protocol"),
        _v("ELEMENT", "Description of Element", "Perm", SQ, "Protocol"),
        _v("TABRANCH", "Branch", "Exp", RULE, "Protocol"),
        _v(
            "TATRANS",
            "Transition Rule",
            "Exp",
            RULE,
            "Protocol",
            comment="Null: no element of any arm leads elsewhere than the next",
        ),
        _v("EPOCH", "Epoch", "Req", TIMING, "Protocol", codelist="EPOCH"),
    ),
    "te": (
        STUDYID,
        DOMAIN,
        _v("ETCD", "Element Code", "Req", TOPIC, "Protocol"),
        _v("ELEMENT", "Description of Element", "Req", SQ, "Protocol"),
        _v("TESTRL", "Rule for Start of Element", "Req", RULE, "Protocol"),
        _v("TEENRL", "Rule for End of Element", "Perm", RULE, "Protocol"),
        _v("TEDUR", "Planned Duration of Element", "Perm", TIMING, "Protocol"),
    ),
    "tv": (
        STUDYID,
        DOMAIN,
        _v("VISITNUM", "Visit Number", "Req", TOPIC, "Protocol", "integer"),
        _v("VISIT", "Visit Name", "Perm", SQ, "Protocol"),
        _v("VISITDY", "Planned Study Day of Visit", "Perm", TIMING, "Protocol", "integer"),
        _v(
            "ARMCD",
            "Planned Arm Code",
            "Exp",
            RQ,
            "Protocol",
            comment="Null: every arm has the same visits",
            codelist="ARMCD",
        ),
        _v("TVSTRL", "Visit Start Rule", "Req", RULE, "Protocol"),
    ),
}

DATASETS: dict[str, DatasetMeta] = {
    "dm": DatasetMeta(
        "Demographics", "SPECIAL PURPOSE", "One record per subject", ("STUDYID", "USUBJID")
    ),
    "ds": DatasetMeta(
        "Disposition",
        "EVENTS",
        "One record per disposition status or protocol milestone per subject",
        ("STUDYID", "USUBJID", "DSDECOD", "DSSTDTC"),
    ),
    "ex": DatasetMeta(
        "Exposure",
        "INTERVENTIONS",
        "One record per constant dosing interval per subject",
        ("STUDYID", "USUBJID", "EXTRT", "EXSTDTC", "EXREFID"),
    ),
    "ta": DatasetMeta(
        "Trial Arms",
        "TRIAL DESIGN",
        "One record per planned Element per Arm",
        ("STUDYID", "ARMCD", "TAETORD"),
        reference_data=True,
    ),
    "te": DatasetMeta(
        "Trial Elements",
        "TRIAL DESIGN",
        "One record per planned Element",
        ("STUDYID", "ETCD"),
        reference_data=True,
    ),
    "tv": DatasetMeta(
        "Trial Visits",
        "TRIAL DESIGN",
        "One record per planned Visit per Arm",
        ("STUDYID", "VISITNUM", "ARMCD"),
        reference_data=True,
    ),
}
"""Every dataset, in the order of the export: the subject data, then the trial design."""


@dataclass(frozen=True)
class Dataset:
    """One dataset's rows, every value a string ("" for null), in its variables' order."""

    name: str
    rows: list[Row]

    @property
    def variables(self) -> tuple[Variable, ...]:
        return VARIABLES[self.name]

    @property
    def meta(self) -> DatasetMeta:
        return DATASETS[self.name]
