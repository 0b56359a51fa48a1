"""The bulk loader: a PostgreSQL bench database at 100x the IMC-002 trial, built with COPY.

The service builds the study as the base benchmark does (migrations, demo set-up, phase II
open), with the phase II cap and list widened for the bulk subjects. Then one psycopg
transaction COPYs, without the service: `subjects` randomized subjects spread over the sites
and the phase II strata, each on the next slot of its stratum (as the service assigns them),
numbered consecutively, with a day 1 and a week 4 dispensing of their slot's content; kits
up to `kits` in all (the dispensed ones, stock at the sites and at the depot, at the demo's
lots and expiry dates); audit entries up to `audit` in all, chained with the service's own
hash (app/domain/audit_chain.py) after the entries the set-up wrote, and the chain head moved
to the last one. `irt audit verify` and the service's verification accept the result.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg

from app.domain.audit_chain import entry_hash
from benchmarks.ceiling import _stratum
from benchmarks.load import randomize_body
from benchmarks.setup import BenchDatabase, set_up

BASE_SUBJECTS = 200
"""IMC-002 enrols about 200 subjects: 100x is 20,000."""


@dataclass
class BuildReport:
    subjects: int
    kits: int
    audit_entries: int
    seconds: dict[str, float] = field(default_factory=dict)


def _dose(weight: Decimal) -> tuple[Decimal, int, Decimal]:
    """Phase II at 1.2 mg/kg, 100 mg vials, 10 mg/mL (as benchmarks/ceiling.py)."""
    dose = (weight * Decimal("1.2")).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return dose, math.ceil(dose / 100), (dose / 10).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _js(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class _Chain:
    """Appends audit entries after the current head, hashed as app/services/audit.py does."""

    def __init__(self, seq: int, prev: str) -> None:
        self.seq, self.prev = seq, prev
        self.rows: list[tuple[Any, ...]] = []
        self.clock = datetime.now(UTC) - timedelta(days=400)

    def add(
        self, user: str, role: str, action: str, entity: str, entity_id: object, **after: Any
    ) -> None:
        self.seq += 1
        self.clock += timedelta(milliseconds=20)
        content = {
            "seq": self.seq,
            "occurred_at": self.clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "username": user,
            "role": role,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "before": "{}",
            "after": _js(after),
            "reason": None,
        }
        digest = entry_hash(self.prev, content)
        self.rows.append((*content.values(), self.prev, digest))
        self.prev = digest


def _copy(conn: psycopg.Connection[Any], table: str, columns: str, rows: Iterator[Any]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def build(
    workdir: Path,
    *,
    subjects: int = 100 * BASE_SUBJECTS,
    kits: int = 600_000,
    audit: int = 1_000_000,
    sites: int = 32,
    room: int = 2000,
    site_stock_share: float = 0.0,
) -> tuple[BenchDatabase, BuildReport]:
    """A migrated PostgreSQL bench database holding `subjects` randomized subjects; `room`
    more can be randomized by the service (the phase II cap and the site stock allow them).
    The kits beyond those dispensed stay at the depot, but for `site_stock_share` of them
    spread over the sites: a site's stock follows its enrolment rate, not the study's size."""
    report = BuildReport(subjects, kits, audit)
    began = time.monotonic()
    bench = set_up("postgresql", workdir, room, sites, cap_room=subjects)
    report.seconds["service set-up (migrate, study, sites, lists)"] = time.monotonic() - began
    began = time.monotonic()
    with psycopg.connect(_plain(bench.url)) as conn:
        _bulk(conn, bench, subjects, kits, audit, site_stock_share)
        conn.commit()
    report.seconds["bulk COPY and hashing"] = time.monotonic() - began
    began = time.monotonic()
    with psycopg.connect(_plain(bench.url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    report.seconds["VACUUM ANALYZE"] = time.monotonic() - began
    return bench, report


def _bulk(
    conn: psycopg.Connection[Any],
    bench: BenchDatabase,
    subjects: int,
    kits: int,
    audit: int,
    site_stock_share: float,
) -> None:
    q = conn.execute
    rng = random.Random("scale-100x")
    prefix = bench.study.randomization_number_prefix
    list_id = q("SELECT id FROM randomization_lists WHERE scope = 'P2'").fetchone()[0]  # type: ignore[index]
    slots: dict[str, list[tuple[int, str, int]]] = {}
    for slot_id, stratum, arm, sequence in q(
        "SELECT id, stratum, arm, sequence FROM randomization_slots WHERE list_id = %s "
        "ORDER BY stratum, sequence",
        (list_id,),
    ):
        slots.setdefault(stratum, []).append((slot_id, arm, sequence))
    used = {s: 0 for s in slots}
    for stratum, count in q(
        "SELECT stratum, count(*) FROM randomizations WHERE scope = 'P2' GROUP BY stratum"
    ):
        used[stratum] = count
    total = q("SELECT count(*) FROM randomizations").fetchone()[0]  # type: ignore[index]
    depot, site_depot = q(
        "SELECT depot_id, (SELECT depot_id FROM kits WHERE site_id IS NOT NULL LIMIT 1) "
        "FROM kits WHERE depot_id IS NOT NULL AND site_id IS NULL LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    lots = q(
        "SELECT content, lot, expiry_date FROM kits GROUP BY content, lot, expiry_date "
        "HAVING expiry_date > current_date + 200 ORDER BY expiry_date"
    ).fetchall()
    by_content: dict[str, list[tuple[str, date]]] = {}
    for content, lot, expiry in lots:
        by_content.setdefault(content, []).append((lot, expiry))
    existing_kits = q("SELECT count(*) FROM kits").fetchone()[0]  # type: ignore[index]
    head_seq, head_hash = q("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()  # type: ignore[misc]
    next_id = {
        t: q(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0]  # type: ignore[index]
        for t in ("subjects", "randomizations", "dispensings", "dispensed_kits", "kit_imports")
    }
    now = datetime.now(UTC)
    import_id = next_id["kit_imports"]
    q(
        "INSERT INTO kit_imports (id, sha256, kit_count, imported_at, imported_by) "
        "VALUES (%s, %s, %s, %s, 'bench:scale')",
        (import_id, f"{import_id:064x}", kits - existing_kits, now),
    )
    chain = _Chain(head_seq, head_hash)
    kit_rows: list[tuple[Any, ...]] = []
    kit_serial = 0

    def new_kit(content: str, status: str, site: str | None) -> str:
        nonlocal kit_serial
        kit_serial += 1
        number = f"Z{kit_serial:08d}"
        lot, expiry = rng.choice(by_content[content])
        home = site_depot if site else depot
        kit_rows.append((number, content, lot, expiry, status, home, site, import_id, now))
        return number

    subject_rows: list[tuple[Any, ...]] = []
    rand_rows: list[tuple[Any, ...]] = []
    disp_rows: list[tuple[Any, ...]] = []
    dk_rows: list[tuple[Any, ...]] = []
    strata = sorted(slots)
    today = now.date()
    for n in range(subjects):
        site = bench.sites[n % len(bench.sites)]
        coordinator, pharmacist = bench.coordinator(site), bench.pharmacist(site)
        day_one = today - timedelta(days=60 + n % 300)
        body = randomize_body(rng, day_one)
        stratum = _stratum(body["eligibility"])
        if used[stratum] >= len(slots[stratum]):
            stratum = min(strata, key=lambda s: used[s] - len(slots[s]))
        slot_id, arm, sequence = slots[stratum][used[stratum]]
        used[stratum] += 1
        subject_id = next_id["subjects"] + n
        total += 1
        number = f"{prefix}-{total:04d}"
        weight = Decimal(str(body["weight_kg"]))
        dose, vials, volume = _dose(weight)
        at = datetime.combine(day_one, datetime.min.time(), UTC) + timedelta(hours=10)
        subject_rows.append(
            (subject_id, site, f"{site}-BULK-{n:05d}", rng.choice("FFFFFFFFM"),
             rng.randint(1950, 2005), "randomized", at, coordinator)
        )  # fmt: skip
        chain.add(coordinator, "site_coordinator", "subject.register", "subject", subject_id,
                  site_id=site)  # fmt: skip
        rand_id = next_id["randomizations"] + n
        rand_rows.append(
            (rand_id, subject_id, slot_id, number, "phase_ii", "P2", stratum, at, coordinator,
             day_one, weight, Decimal("1.2"), dose, vials, volume, _js(body["eligibility"]))
        )  # fmt: skip
        for visit, offset, who in (("D1", 0, coordinator), ("W4", 28, pharmacist)):
            disp_id = next_id["dispensings"] + len(disp_rows)
            disp_rows.append(
                (disp_id, subject_id, visit, 0 if visit == "D1" else 1,
                 day_one + timedelta(days=offset), weight, weight, Decimal("1.2"), dose, vials,
                 volume, at + timedelta(days=offset), who)
            )  # fmt: skip
            numbers = [new_kit(arm, "dispensed", site) for _ in range(vials)]
            for number_ in numbers:
                dk_rows.append((next_id["dispensed_kits"] + len(dk_rows), disp_id, number_))
            role = "site_coordinator" if who == coordinator else "pharmacist"
            chain.add(who, role, "subject.dispense", "subject", subject_id, visit=visit,
                      kits=numbers)  # fmt: skip
            for number_ in numbers:
                chain.add(who, role, "kit.dispensed", "kit", number_, status="dispensed")
            if visit == "D1":
                chain.add(coordinator, "site_coordinator", "subject.randomize", "subject",
                          subject_id, randomization_number=number, slot_id=slot_id,
                          slot_sequence=sequence)  # fmt: skip
    contents = sorted(by_content)
    remaining = kits - existing_kits - len(kit_rows)
    for k in range(max(remaining, 0)):
        at_site = k < remaining * site_stock_share
        stock = bench.sites[k % len(bench.sites)] if at_site else None
        number = new_kit(contents[k % len(contents)], "available", stock)
        if at_site:
            chain.add("supply", "supply_manager", "kit.received", "kit", number, site_id=stock)
    filler = 0
    while chain.seq < audit:
        filler += 1
        user = bench.coordinator(bench.sites[filler % len(bench.sites)])
        chain.add(user, "site_coordinator", "auth.login", "user", user)
    _copy(conn, "subjects", "id, site_id, screening_number, sex, year_of_birth, status, "
          "created_at, created_by", iter(subject_rows))  # fmt: skip
    _copy(conn, "kits", "kit_number, content, lot, expiry_date, status, depot_id, site_id, "
          "import_id, updated_at", iter(kit_rows))  # fmt: skip
    _copy(conn, "randomizations", "id, subject_id, slot_id, randomization_number, stage, scope, "
          "stratum, randomized_at, randomized_by, visit_date, weight_kg, dose_level_mg_per_kg, "
          "dose_mg, vials, drug_volume_ml, eligibility_json", iter(rand_rows))  # fmt: skip
    _copy(conn, "dispensings", "id, subject_id, visit, visit_index, visit_date, "
          "weight_measured_kg, weight_kg, dose_level_mg_per_kg, dose_mg, vials, drug_volume_ml, "
          "dispensed_at, dispensed_by", iter(disp_rows))  # fmt: skip
    _copy(conn, "dispensed_kits", "id, dispensing_id, kit_number", iter(dk_rows))
    _copy(conn, "audit_log", "seq, occurred_at, username, role, action, entity, entity_id, "
          "before, after, reason, prev_hash, hash", iter(chain.rows))  # fmt: skip
    q("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (chain.seq, chain.prev))
    for table in ("subjects", "randomizations", "dispensings", "dispensed_kits", "kit_imports"):
        q(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
