"""The variables of the SDTM-style datasets and their define-style descriptions (label, role,
origin, type, comment), one table per dataset. Conventions and choices: docs/exports.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Variable:
    """A column and its define-style description."""

    name: str
    label: str
    role: str
    origin: str
    type: Literal["Char", "Num"] = "Char"
    comment: str = ""


def _v(name: str, *, label: str, role: str, origin: str, comment: str = "") -> Variable:
    return Variable(name, label, role, origin, "Char", comment)


def _n(name: str, *, label: str, role: str, origin: str, comment: str = "") -> Variable:
    return Variable(name, label, role, origin, "Num", comment)


_KEYS = (
    _v("STUDYID", label="Study Identifier", role="Identifier", origin="Assigned"),
    _v("DOMAIN", label="Domain Abbreviation", role="Identifier", origin="Assigned"),
)
_SUBJECT_KEYS = (
    *_KEYS,
    _v(
        "USUBJID",
        label="Unique Subject Identifier",
        role="Identifier",
        origin="Derived",
        comment="STUDYID-SITEID-SUBJID",
    ),
)
VARIABLES: dict[str, tuple[Variable, ...]] = {
    "dm": (
        *_SUBJECT_KEYS,
        _v(
            "SUBJID",
            label="Subject Identifier for the Study",
            role="Topic",
            origin="Collected",
            comment="Screening number",
        ),
        _v(
            "RFSTDTC",
            label="Subject Reference Start Date/Time",
            role="Record Qualifier",
            origin="Derived",
            comment="Date of first study treatment (as RFXSTDTC)",
        ),
        _v(
            "RFXSTDTC",
            label="Date/Time of First Study Treatment",
            role="Record Qualifier",
            origin="Derived",
            comment="Date of the first dosing visit with a kit",
        ),
        _v(
            "RFXENDTC",
            label="Date/Time of Last Study Treatment",
            role="Record Qualifier",
            origin="Derived",
            comment="Date of the last dosing visit with a kit",
        ),
        _v("SITEID", label="Study Site Identifier", role="Record Qualifier", origin="Assigned"),
        _v(
            "BRTHDTC",
            label="Date/Time of Birth",
            role="Record Qualifier",
            origin="Collected",
            comment="Year of birth only (ISO 8601 partial date)",
        ),
        _v("SEX", label="Sex", role="Record Qualifier", origin="Collected"),
        _v(
            "ARMCD",
            label="Planned Arm Code",
            role="Record Qualifier",
            origin="Assigned",
            comment="IRT allocation; NOTASSGN if not randomized; BLINDED in the blinded export",
        ),
        _v(
            "ARM",
            label="Description of Planned Arm",
            role="Synonym Qualifier",
            origin="Assigned",
            comment="Arm table (TA) description of ARMCD",
        ),
        _v(
            "ACTARMCD",
            label="Actual Arm Code",
            role="Record Qualifier",
            origin="Derived",
            comment="From the contents of the kits dispensed; NOTTRT without kits, UNPLAN if mixed",
        ),
        _v("ACTARM", label="Description of Actual Arm", role="Synonym Qualifier", origin="Derived"),
        _v(
            "COUNTRY",
            label="Country",
            role="Record Qualifier",
            origin="Derived",
            comment="Site country, ISO 3166-1 alpha-3",
        ),
    ),
    "ds": (
        *_SUBJECT_KEYS,
        _n("DSSEQ", label="Sequence Number", role="Identifier", origin="Derived"),
        _v(
            "DSREFID",
            label="Reference ID",
            role="Identifier",
            origin="Assigned",
            comment="Randomization number",
        ),
        _v(
            "DSTERM",
            label="Reported Term for the Disposition Event",
            role="Topic",
            origin="Assigned",
        ),
        _v(
            "DSDECOD",
            label="Standardized Disposition Term",
            role="Synonym Qualifier",
            origin="Assigned",
        ),
        _v(
            "DSCAT",
            label="Category for Disposition Event",
            role="Grouping Qualifier",
            origin="Assigned",
        ),
        _v(
            "DSSTDTC",
            label="Start Date/Time of Disposition Event",
            role="Timing",
            origin="Collected",
            comment="Time the IRT randomized the subject, UTC",
        ),
    ),
    "ex": (
        *_SUBJECT_KEYS,
        _n("EXSEQ", label="Sequence Number", role="Identifier", origin="Derived"),
        _v(
            "EXREFID",
            label="Reference ID",
            role="Identifier",
            origin="Assigned",
            comment="Kit number",
        ),
        _v(
            "EXTRT",
            label="Name of Treatment",
            role="Topic",
            origin="Assigned",
            comment="Content of the kit; BLINDED in the blinded export",
        ),
        _n(
            "EXDOSE",
            label="Dose",
            role="Record Qualifier",
            origin="Derived",
            comment="Part of the visit dose drawn from this vial (full vials first), the same for "
            "every kit content",
        ),
        _v("EXDOSU", label="Dose Units", role="Variable Qualifier", origin="Assigned"),
        _v("EXDOSFRM", label="Dose Form", role="Variable Qualifier", origin="Assigned"),
        _v(
            "EXROUTE", label="Route of Administration", role="Variable Qualifier", origin="Assigned"
        ),
        _v(
            "EXLOT",
            label="Lot Number",
            role="Record Qualifier",
            origin="Assigned",
            comment="Kit lot; empty in the blinded export",
        ),
        _v("VISIT", label="Visit Name", role="Timing", origin="Assigned"),
        _v(
            "EXSTDTC",
            label="Start Date/Time of Treatment",
            role="Timing",
            origin="Collected",
            comment="Visit date",
        ),
        _v(
            "EXENDTC",
            label="End Date/Time of Treatment",
            role="Timing",
            origin="Collected",
            comment="Visit date",
        ),
    ),
    "ta": (
        *_KEYS,
        _v(
            "ARMCD",
            label="Planned Arm Code",
            role="Topic",
            origin="Protocol",
            comment="Scope code + arm code",
        ),
        _v("ARM", label="Description of Planned Arm", role="Synonym Qualifier", origin="Protocol"),
        _n(
            "TAETORD", label="Planned Order of Element within Arm", role="Timing", origin="Protocol"
        ),
        _v("ETCD", label="Element Code", role="Record Qualifier", origin="Protocol"),
        _v("ELEMENT", label="Description of Element", role="Synonym Qualifier", origin="Protocol"),
        _v("TABRANCH", label="Branch", role="Rule", origin="Protocol"),
        _v("EPOCH", label="Epoch", role="Timing", origin="Protocol"),
    ),
}
