"""Electronic signatures (21 CFR 11.50, 11.200): what a signer declares, per action, and the
manifestation kept with the signed record.

The service, not the client, words each meaning, so that the same decision reads the same in
the API, the pages, the CLI and the audit trail; the signer confirms it by entering their
password again."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def unblinding_meaning(*, screening_number: str, site_id: str) -> str:
    return f"I authorise the emergency unblinding of subject {screening_number} at site {site_id}"


def cohort_meaning(*, code: str, action: str) -> str:
    verb = "opening" if action == "open" else "closing"
    return f"I approve {verb} cohort {code}"


def phase2_dose_meaning(dose_mg_per_kg: Decimal) -> str:
    return f"I approve {dose_mg_per_kg.normalize():f} mg/kg as the phase II dose"


def list_generation_meaning(study_code: str) -> str:
    return f"I approve the generation of the randomization lists of study {study_code}"


def list_import_meaning(sha256: str) -> str:
    return f"I approve the randomization list file with SHA-256 {sha256} for import"


def kit_list_meaning(sha256: str) -> str:
    return f"I approve the kit list with SHA-256 {sha256} for import"


def correction_meaning(*, entity: str, entity_id: str) -> str:
    return f"I approve the correction of {entity} {entity_id}"


def status_correction_meaning(*, undone: str, screening_number: str, site_id: str) -> str:
    """`undone`: the act undone, as a noun phrase ("dosing discontinuation")."""
    return f"I approve undoing the {undone} of subject {screening_number} at site {site_id}"


def caps_meaning(caps: dict[str, int]) -> str:
    listed = ", ".join(f"{scope} {cap}" for scope, cap in sorted(caps.items()))
    return f"I approve these randomization caps: {listed}"


def study_version_meaning(*, sha256: str, effective_date: str) -> str:
    return (
        f"I approve the study definition with SHA-256 {sha256} as a new version in effect "
        f"from {effective_date}"
    )


def same_meaning(shown: str, expected: str) -> bool:
    """A client echoes the meaning it showed; spacing and a final full stop do not matter."""
    return " ".join(shown.split()).rstrip(".") == " ".join(expected.split()).rstrip(".")


@dataclass(frozen=True)
class Signature:
    """A signature as it is shown and recorded: who (printed name and user name), when (UTC,
    ISO 8601) and what it means."""

    printed_name: str
    username: str
    signed_at: str
    meaning: str

    def as_record(self) -> dict[str, Any]:
        return {
            "printed_name": self.printed_name,
            "username": self.username,
            "signed_at": self.signed_at,
            "meaning": self.meaning,
        }


def with_signature(after: dict[str, Any], signature: Signature | None) -> dict[str, Any]:
    """An audit entry's `after`, carrying the signature of the change when it was signed."""
    return after if signature is None else {**after, "signature": signature.as_record()}
