"""The bulk loader: a PostgreSQL bench database at 100x the IMC-002 trial, built with COPY.

The service builds the study as the base benchmark does (migrations, demo set-up, phase II
open), with the phase II cap and list widened for the bulk subjects. Then one psycopg
transaction COPYs, without the service: `subjects` randomized subjects spread over the sites
and the phase II strata, each on the next slot of its stratum (as the service assigns them),
numbered consecutively, dosed with their slot's content at every visit due so far (a trial in
its steady state: no subject is overdue, so the resupply forecast sees the visits to come); kits
up to `kits` in all (the dispensed ones, stock at the sites and at the depot, at the demo's
lots and expiry dates); audit entries up to `audit` in all (more if the subjects' own need
more), chained with the service's own hash (app/domain/audit_chain.py) after the entries the
set-up wrote, and the chain head moved to the last one. `irt audit verify` finds the chain
intact; its replay reports the bulk rows as unexplained, because their entries carry only
what the chain's size and shape need, not every field the service records.

Two shapes of growth. By default the bulk subjects go to the service's 32 sites, so at 100x a
site holds 625 of them (the trial grows by subjects per site). With `bulk_sites`, they go to
that many more sites, loaded in bulk with their coordinator and pharmacist (the trial grows by
sites, as real trials do): the service's own sites keep the base's size, while every table the
trial shares (subjects, kits, audit trail, sites, users) is 100x.
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

from app.db.engine import Database
from app.domain.audit_chain import entry_hash
from app.services.kit_counts import fold_kit_counts
from benchmarks.ceiling import _stratum
from benchmarks.load import randomize_body
from benchmarks.setup import BenchDatabase, set_up

KEPT_COUNTS = ("randomization_counts", "subject_counts", "kit_counts", "kit_count_changes")
"""The small tables the triggers keep, rewritten after the load. The COPY's one transaction
updates their few rows 20,000 times, and none of the dead versions can be pruned before it
commits: subject_counts grew to 442 pages for 165 rows, and randomization_counts to 167 pages for
4 rows, read whole by each report and randomization. A live trial makes those updates over
months, and autovacuum lets each new version reuse the space of the old ones."""

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
        self, user: str, role: str, action: str, entity: str, entity_id: object, /, **after: Any
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


def _add_sites(
    conn: psycopg.Connection[Any],
    bench: BenchDatabase,
    count: int,
    chain: _Chain,
) -> tuple[str, ...]:
    """`count` active sites supplied by the depot of the service's sites, each with a
    coordinator and a pharmacist who sign in with the bench password (the hash of the service's
    own first coordinator), and their audit entries; returns the site codes."""
    q = conn.execute
    password_hash = q(
        "SELECT password_hash FROM users WHERE username = %s", (bench.coordinator(bench.sites[0]),)
    ).fetchone()[0]  # type: ignore[index]
    depot = q("SELECT depot_id FROM sites WHERE id = %s", (bench.sites[0],)).fetchone()[0]  # type: ignore[index]
    next_user = q("SELECT coalesce(max(id), 0) + 1 FROM users").fetchone()[0]  # type: ignore[index]
    now = datetime.now(UTC)
    codes = tuple(f"BK{n:05d}" for n in range(1, count + 1))
    site_rows, user_rows, link_rows = [], [], []
    for n, code in enumerate(codes):
        name = f"Bulk site {n + 1}"
        site_rows.append((code, name, "DE", True, now, depot, "Europe/Berlin"))
        chain.add("admin", "admin", "site.create", "site", code, name=name, country="DE",
                  active=False, depot_id=depot, timezone="Europe/Berlin")  # fmt: skip
        chain.add("admin", "admin", "site.activate", "site", code, active=True)
        for k, (username, role) in enumerate(
            ((bench.coordinator(code), "site_coordinator"), (bench.pharmacist(code), "pharmacist"))
        ):
            user_id = next_user + 2 * n + k
            user_rows.append((user_id, username, password_hash, role, True, now, 0))
            link_rows.append((user_id, code))
            chain.add("admin", "admin", "user.create", "user", username, role=role,
                      site_ids=[code], active=True, email=None)  # fmt: skip
    _copy(conn, "sites", "id, name, country, active, created_at, depot_id, timezone",
          iter(site_rows))  # fmt: skip
    _copy(conn, "users", "id, username, password_hash, role, active, created_at, token_version",
          iter(user_rows))  # fmt: skip
    _copy(conn, "user_sites", "user_id, site_id", iter(link_rows))
    q("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))")
    return codes


def build(
    workdir: Path,
    *,
    subjects: int = 100 * BASE_SUBJECTS,
    kits: int = 600_000,
    audit: int = 1_000_000,
    sites: int = 32,
    room: int = 2000,
    site_stock_share: float = 0.0,
    bulk_sites: int = 0,
) -> tuple[BenchDatabase, BuildReport]:
    """A migrated PostgreSQL bench database holding `subjects` randomized subjects; `room`
    more can be randomized by the service (the phase II cap and the site stock allow them).
    The kits beyond those dispensed stay at the depot, but for `site_stock_share` of them
    spread over the sites: a site's stock follows its enrolment rate, not the study's size.
    `bulk_sites` > 0: the bulk subjects go to that many sites of their own (module docstring)."""
    report = BuildReport(subjects, kits, audit)
    began = time.monotonic()
    bench = set_up("postgresql", workdir, room, sites, cap_room=subjects)
    report.seconds["service set-up (migrate, study, sites, lists)"] = time.monotonic() - began
    began = time.monotonic()
    with psycopg.connect(_plain(bench.url)) as conn:
        _bulk(conn, bench, subjects, kits, audit, site_stock_share, bulk_sites)
        conn.commit()
    report.seconds["bulk COPY and hashing"] = time.monotonic() - began
    began = time.monotonic()
    db = Database(bench.url)  # the loaded kits into the kept counts, as the daily job folds
    try:
        fold_kit_counts(db)
    finally:
        db.dispose()
    report.seconds["kit counts folded"] = time.monotonic() - began
    began = time.monotonic()
    with psycopg.connect(_plain(bench.url), autocommit=True) as conn:
        conn.execute(f"VACUUM FULL {', '.join(KEPT_COUNTS)}")
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
    bulk_sites: int = 0,
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
    homes = _add_sites(conn, bench, bulk_sites, chain) if bulk_sites else bench.sites
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
    schedule = bench.study.schedule.visits()
    for n in range(subjects):
        site = homes[n % len(homes)]
        coordinator, pharmacist = bench.coordinator(site), bench.pharmacist(site)
        # recruited over nine months, none past the last visit (336 days): all on treatment
        day_one = today - timedelta(days=60 + n % 270)
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
        # dosed at every visit due so far (same vials: the weight holds): the next one is to come
        last = max(v.index for v in schedule if v.day_offset <= (today - day_one).days)
        rand_rows.append(
            (rand_id, subject_id, slot_id, number, "phase_ii", "P2", stratum, at, coordinator,
             day_one, weight, Decimal("1.2"), dose, vials, volume, _js(body["eligibility"]),
             last, vials)
        )  # fmt: skip
        for visit in schedule:
            if visit.index > last:
                break
            offset, code = visit.day_offset, visit.code
            who = coordinator if visit.index == 0 else pharmacist
            disp_id = next_id["dispensings"] + len(disp_rows)
            disp_rows.append(
                (disp_id, subject_id, code, visit.index, day_one + timedelta(days=offset),
                 weight, weight, Decimal("1.2"), dose, vials, volume,
                 at + timedelta(days=offset), who)
            )  # fmt: skip
            numbers = [new_kit(arm, "dispensed", site) for _ in range(vials)]
            for number_ in numbers:
                dk_rows.append((next_id["dispensed_kits"] + len(dk_rows), disp_id, number_))
            role = "site_coordinator" if who == coordinator else "pharmacist"
            chain.add(who, role, "subject.dispense", "subject", subject_id, visit=code,
                      kits=numbers)  # fmt: skip
            for number_ in numbers:
                chain.add(who, role, "kit.dispensed", "kit", number_, status="dispensed")
            if visit.index == 0:
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
          "dose_mg, vials, drug_volume_ml, eligibility_json, last_visit_index, last_vials",
          iter(rand_rows))  # fmt: skip
    _copy(conn, "dispensings", "id, subject_id, visit, visit_index, visit_date, "
          "weight_measured_kg, weight_kg, dose_level_mg_per_kg, dose_mg, vials, drug_volume_ml, "
          "dispensed_at, dispensed_by", iter(disp_rows))  # fmt: skip
    _copy(conn, "dispensed_kits", "id, dispensing_id, kit_number", iter(dk_rows))
    _copy(conn, "audit_log", "seq, occurred_at, username, role, action, entity, entity_id, "
          "before, after, reason, prev_hash, hash", iter(chain.rows))  # fmt: skip
    q("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (chain.seq, chain.prev))
    for table in ("subjects", "randomizations", "dispensings", "dispensed_kits", "kit_imports"):
        q(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
