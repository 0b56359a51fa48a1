"""Replay of the audit trail: what each business row should hold, rebuilt from the after-states
the entries record, and every row the trail does not explain.

A hash chain only shows that the trail was not changed; someone who edits a business row
directly (a kit's content, an unblinding, a dose) leaves the trail intact. The replay compares
the two: a row with no entry, a value that differs from the last one recorded, an entry whose
row is gone. Kit status and location, shipments and users are not replayed (docs/audit.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

TABLES = (
    "study",
    "cohorts",
    "sites",
    "randomization_lists",
    "kit_imports",
    "kits",
    "subjects",
    "randomizations",
    "dispensings",
    "unblindings",
)
NUMERIC = frozenset(
    {"dose_mg_per_kg", "phase2_dose_mg_per_kg", "dose_level_mg_per_kg", "weight_kg", "dose_mg"}
)
DOSE_FIELDS = ("dose_level_mg_per_kg", "weight_kg", "dose_mg", "vials")

Rows = Mapping[str, Mapping[str, Mapping[str, Any]]]
"""table -> row key -> field -> value, as the database holds them."""


def value_text(name: str, value: Any) -> str | None:
    """One spelling for a value on both sides: the trail's JSON and the database's types."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in NUMERIC or isinstance(value, float | Decimal):
        return repr(float(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Discrepancy:
    table: str
    key: str
    field: str | None
    found: str | None
    recorded: str | None
    seq: int | None
    """The entry that last recorded the value (None: no entry explains the row)."""
    problem: str

    @property
    def line(self) -> str:
        """One line for a reader (the CLI and the monitor's page): the row, the problem, and
        the value found against the one the trail recorded."""
        values = f" ({self.field}: {self.found}, expected {self.recorded})" if self.field else ""
        return f"{self.table} {self.key}: {self.problem}{values}"


@dataclass(frozen=True)
class ReplayReport:
    ok: bool
    entries: int
    rows: int
    discrepancies: list[Discrepancy]


@dataclass
class _Expected:
    """Field -> (value text, seq of the entry that recorded it)."""

    fields: dict[str, tuple[str | None, int]] = field(default_factory=dict)

    def set(self, seq: int, **values: Any) -> None:
        for name, value in values.items():
            self.fields[name] = (value_text(name, value), seq)


class _State:
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, _Expected]] = {t: {} for t in TABLES}

    def row(self, table: str, key: object) -> _Expected:
        return self.tables[table].setdefault(str(key), _Expected())


def _dose(after: Mapping[str, Any]) -> dict[str, Any]:
    dose = after.get("dose") or {}
    return {name: dose.get(name) for name in DOSE_FIELDS}


def _apply(state: _State, entry: Mapping[str, Any]) -> None:
    """One entry's after-state onto the rows it explains (actions not listed change none)."""
    seq, action, key = int(entry["seq"]), entry["action"], entry["entity_id"]
    after: dict[str, Any] = json.loads(entry["after"] or "{}")
    if action == "study.load":
        state.row("study", key).set(
            seq, definition_sha256=after.get("definition_sha256"), phase2_dose_mg_per_kg=None
        )
        for cohort in after.get("definition", {}).get("phase_ib", {}).get("cohorts", []):
            state.row("cohorts", cohort["code"]).set(
                seq, status="planned", dose_mg_per_kg=cohort["dose_mg_per_kg"]
            )
    elif action == "phase2.select_dose":
        state.row("study", key).set(seq, phase2_dose_mg_per_kg=after.get("dose_mg_per_kg"))
    elif action in ("cohort.open", "cohort.close"):
        state.row("cohorts", key).set(
            seq, status=after.get("status"), dose_mg_per_kg=after.get("dose_mg_per_kg")
        )
    elif action == "site.create":
        state.row("sites", key).set(seq, active=False)
    elif action == "site.activate":
        state.row("sites", key).set(seq, active=True)
    elif action in ("list.generated", "list.imported"):
        state.row("randomization_lists", key).set(
            seq,
            sha256=after.get("sha256"),
            slot_count=after.get("slots"),
            source=after.get("source"),
        )
    elif action == "kits.import":
        state.row("kit_imports", key).set(
            seq, sha256=after.get("sha256"), kit_count=after.get("kits")
        )
        for number, content, lot, expiry in after.get("kit_list", []):
            state.row("kits", number).set(
                seq, content=content, lot=lot, expiry_date=expiry, import_id=key
            )
    else:
        _apply_subject(state, seq=seq, action=action, key=key, after=after, reason=entry["reason"])


def _apply_subject(
    state: _State, *, seq: int, action: str, key: str, after: dict[str, Any], reason: str | None
) -> None:
    if action == "subject.register":
        state.row("subjects", key).set(
            seq,
            site_id=after.get("site_id"),
            screening_number=after.get("screening_number"),
            sex=after.get("sex"),
            year_of_birth=after.get("year_of_birth"),
            status="registered",
            unblinded=False,
        )
    elif action == "subject.randomize":
        state.row("subjects", key).set(seq, status="randomized")
        state.row("randomizations", key).set(
            seq,
            randomization_number=after.get("randomization_number"),
            stage=after.get("stage"),
            stratum=after.get("stratum"),
            actual_stratum=None,
            slot_id=after.get("slot_id"),
            **_dose(after),
        )
    elif action == "subject.dispense":
        state.row("dispensings", f"{key}/{after.get('visit')}").set(
            seq,
            visit_date=after.get("visit_date"),
            kits=",".join(sorted(after.get("kits", []))),
            **_dose(after),
        )
    elif action == "subject.dispensing_entered_in_error":
        # the row stays, marked; only standing dispensings are compared (docs/visits.md)
        state.tables["dispensings"].pop(f"{key}/{after.get('visit')}", None)
    elif action == "subject.replace_kit":
        row = state.row("dispensings", f"{key}/{after.get('visit')}")
        kits = (row.fields.get("kits", (None, 0))[0] or "").split(",")
        row.set(seq, kits=",".join(sorted(k for k in [*kits, after.get("kit")] if k)))
    elif action in ("subject.status_change", "subject.status_correction"):
        state.row("subjects", key).set(seq, status=after.get("status"))
    elif action == "subject.correct":
        if after.get("field") in ("sex", "year_of_birth"):
            state.row("subjects", key).set(seq, **{after["field"]: after.get("value")})
        if "actual_stratum" in after:
            state.row("randomizations", key).set(seq, actual_stratum=after["actual_stratum"])
    elif action == "subject.unblind":
        state.row("subjects", key).set(seq, unblinded=True)
        state.row("unblindings", key).set(
            seq, reason_category=after.get("reason_category"), reason=reason
        )


def replay(entries: Iterable[Mapping[str, Any]], actual: Rows) -> ReplayReport:
    """Rebuild the expected rows from the entries (in seq order) and compare them with
    `actual`; every row the trail does not explain is one discrepancy, in table order."""
    state = _State()
    count = 0
    for entry in entries:
        _apply(state, entry)
        count += 1
    found: list[Discrepancy] = []
    rows = 0
    for table in TABLES:
        expected, present = state.tables[table], actual.get(table, {})
        rows += len(present)
        for key in sorted(present.keys() - expected.keys()):
            found.append(
                Discrepancy(table, key, None, "present", None, None, "no audit entry explains it")
            )
        for key in sorted(expected.keys() - present.keys()):
            seq = max(s for _, s in expected[key].fields.values())
            found.append(
                Discrepancy(
                    table, key, None, None, "present", seq, f"entry {seq} records it; it is gone"
                )
            )
        for key in sorted(expected.keys() & present.keys()):
            for name, (recorded, seq) in sorted(expected[key].fields.items()):
                value = value_text(name, present[key].get(name))
                if value != recorded:
                    found.append(
                        Discrepancy(
                            table,
                            key,
                            name,
                            value,
                            recorded,
                            seq,
                            f"{name} is {value}; entry {seq} last recorded {recorded}",
                        )
                    )
    return ReplayReport(not found, count, rows, found)
