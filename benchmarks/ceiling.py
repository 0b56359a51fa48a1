"""The ceiling: the database work of a randomization and of a week 4 dosing visit, with no HTTP
and no ORM.

Same concurrency as the load run (one thread and one connection per client), same work and
locks per randomization as the service: share the study row, lock the subject and the stratum,
find the next slot of the stratum, lock the site, pick the day 1 kits (first expiry first),
insert the dispensing, mark the kits dispensed, lock the audit chain head, count for the
randomization number, insert the randomization, append the audit entries to the hash chain
(randomize, dispense, one per kit, as the service does), commit. The week 4 visit of each
subject likewise: share the study row, lock the subject, read its randomization and last visit,
lock the site, pick the kits, insert the dispensing, mark the kits, chain the audit entries.
Raw psycopg on PostgreSQL, sqlite3 on SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE, as the
service). Subjects are inserted untimed beforehand.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app.domain.audit_chain import entry_hash
from app.services.locks import STRATUM_LOCK_SPACE
from benchmarks.cpu import ProcessMeter, busy_fraction, cpu_ticks
from benchmarks.load import randomize_body
from benchmarks.setup import BenchDatabase


@dataclass
class CeilingPhase:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_seconds: float = 0.0
    cpu_busy: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # "load" is the ceiling's process


@dataclass
class CeilingResult:
    clients: int
    randomizations: int
    phases: dict[str, CeilingPhase] = field(default_factory=dict)


def _stratum(answers: dict[str, Any]) -> str:
    sledai = "SLEDAI<10" if answers["sledai_2k_score"] < 10 else "SLEDAI>=10"
    pred = "PRED<10" if answers["prednisone_equivalent_mg_per_day"] < 10 else "PRED>=10"
    return f"{sledai}/{pred}"


def _to_json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class Worker:
    def __init__(self, bench: BenchDatabase, sqlite: bool, conn: Any) -> None:
        self.bench = bench
        self.sqlite = sqlite
        self.conn = conn
        self.p = "?" if sqlite else "%s"

    def q(self, sql: str, *args: Any) -> Any:
        return self.conn.execute(sql.replace("%s", self.p), args)

    def now(self) -> Any:
        moment = datetime.now(UTC)
        return moment.replace(tzinfo=None).isoformat(sep=" ") if self.sqlite else moment

    def randomize(self, subject_id: int, site: str, body: dict[str, Any], user: str) -> None:
        answers = body["eligibility"]
        stratum = _stratum(answers)
        weight = Decimal(str(body["weight_kg"]))
        level = Decimal("1.2")
        dose = (weight * level).quantize(Decimal("0.1"), ROUND_HALF_UP)
        vials = math.ceil(dose / 100)
        volume = (dose / 10).quantize(Decimal("0.1"), ROUND_HALF_UP)
        visit_date = date.fromisoformat(body["visit_date"])
        self.q("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
        try:
            if not self.sqlite:
                self.q("SELECT id FROM study FOR SHARE").fetchone()
            self.q(
                "SELECT status FROM subjects WHERE id = %s"
                + ("" if self.sqlite else " FOR UPDATE"),
                subject_id,
            ).fetchone()
            if not self.sqlite:
                key = zlib.crc32(f"P2/{stratum}".encode()) - 2**31
                self.q("SELECT pg_advisory_xact_lock(%s, %s)", STRATUM_LOCK_SPACE, key).fetchone()
            used = self.q(
                "SELECT count(*) FROM randomizations WHERE scope = %s AND stratum = %s",
                "P2",
                stratum,
            ).fetchone()[0]
            slot_id, arm, sequence = self.q(
                "SELECT s.id, s.arm, s.sequence FROM randomization_slots s "
                "JOIN randomization_lists l ON l.id = s.list_id "
                "WHERE l.scope = %s AND s.stratum = %s AND s.sequence = %s",
                "P2",
                stratum,
                used + 1,
            ).fetchone()
            now = self.now()
            if not self.sqlite:
                self.q("SELECT id FROM sites WHERE id = %s FOR UPDATE", site).fetchone()
            cutoff = max(visit_date, datetime.now(UTC).date()) + timedelta(days=30)
            kits = [
                row[0]
                for row in self.q(
                    "SELECT kit_number FROM kits WHERE site_id = %s AND status = 'available' "
                    "AND content = %s AND expiry_date > %s ORDER BY expiry_date, kit_number "
                    "LIMIT %s",
                    site,
                    arm,
                    cutoff,
                    vials,
                ).fetchall()
            ]
            if len(kits) < vials:
                raise RuntimeError(f"ceiling: site {site} has no {arm} kits left")
            dispensing_id = self.q(
                "INSERT INTO dispensings (subject_id, visit, visit_index, visit_date, "
                "weight_measured_kg, weight_kg, dose_level_mg_per_kg, dose_mg, vials, "
                "drug_volume_ml, dispensed_at, dispensed_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                subject_id,
                "D1",
                0,
                visit_date,
                str(weight),
                str(weight),
                str(level),
                str(dose),
                vials,
                str(volume),
                now,
                user,
            ).fetchone()[0]
            audit = [
                ("subject.dispense", "subject", str(subject_id), {}, {"visit": "D1", "kits": kits})
            ]
            for kit in kits:
                self.q(
                    "UPDATE kits SET status = 'dispensed', updated_at = %s WHERE kit_number = %s",
                    now,
                    kit,
                )
                self.q(
                    "INSERT INTO dispensed_kits (dispensing_id, kit_number) VALUES (%s, %s)",
                    dispensing_id,
                    kit,
                )
                audit.append(
                    ("kit.dispensed", "kit", kit, {"status": "available"}, {"status": "dispensed"})
                )
            seq, prev = self._lock_audit_head()
            total = self.q("SELECT count(*) FROM randomizations").fetchone()[0]
            number = f"BEN-{total + 1:05d}"
            rand_id = self.q(
                "INSERT INTO randomizations (subject_id, slot_id, randomization_number, stage, "
                "scope, stratum, randomized_at, randomized_by, visit_date, weight_kg, "
                "dose_level_mg_per_kg, dose_mg, vials, drug_volume_ml, eligibility_json) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                subject_id,
                slot_id,
                number,
                "phase_ii",
                "P2",
                stratum,
                now,
                user,
                visit_date,
                str(weight),
                str(level),
                str(dose),
                vials,
                str(volume),
                _to_json(answers),
            ).fetchone()[0]
            self.q("UPDATE subjects SET status = 'randomized' WHERE id = %s", subject_id)
            audit.append(
                (
                    "subject.randomize",
                    "subject",
                    str(subject_id),
                    {"status": "registered"},
                    {
                        "randomization_number": number,
                        "slot_id": slot_id,
                        "slot_sequence": sequence,
                        "randomization_id": rand_id,
                    },
                )
            )
            self._chain(audit, seq, prev, user, "site_coordinator")
            self.q("COMMIT")
        except BaseException:
            self.q("ROLLBACK")
            raise

    def dispense(self, subject_id: int, site: str, weight_kg: float, user: str) -> None:
        """The week 4 visit: the dose from the randomization's level, kits of its arm."""
        visit = next(v for v in self.bench.study.schedule.visits() if v.code == "W4")
        today = datetime.now(UTC).date()
        self.q("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
        try:
            if not self.sqlite:
                self.q("SELECT id FROM study FOR SHARE").fetchone()
            self.q(
                "SELECT status FROM subjects WHERE id = %s"
                + ("" if self.sqlite else " FOR UPDATE"),
                subject_id,
            ).fetchone()
            level, arm = self.q(
                "SELECT r.dose_level_mg_per_kg, s.arm FROM randomizations r "
                "JOIN randomization_slots s ON s.id = r.slot_id WHERE r.subject_id = %s",
                subject_id,
            ).fetchone()
            if not self.sqlite:
                self.q("SELECT id FROM sites WHERE id = %s FOR UPDATE", site).fetchone()
            last = self.q(
                "SELECT visit, visit_index, visit_date FROM dispensings WHERE subject_id = %s "
                "AND entered_in_error_at IS NULL ORDER BY visit_index DESC LIMIT 1",
                subject_id,
            ).fetchone()
            if last is None or last[1] >= visit.index:
                raise RuntimeError(f"ceiling: subject {subject_id} is not due for {visit.code}")
            weight = Decimal(str(weight_kg))
            dose = (weight * Decimal(str(level))).quantize(Decimal("0.1"), ROUND_HALF_UP)
            vials = math.ceil(dose / 100)
            volume = (dose / 10).quantize(Decimal("0.1"), ROUND_HALF_UP)
            kits = self._pick_kits(site, arm, today + timedelta(days=30), vials)
            now = self.now()
            dispensing_id = self._insert_dispensing(
                subject_id, visit.code, visit.index, today, weight, level, dose, vials, volume, now
            )
            audit = [("subject.dispense", "subject", str(subject_id), {}, {"visit": visit.code})]
            audit += self._dispense_kits(dispensing_id, kits, now)
            seq, prev = self._lock_audit_head()
            self._chain(audit, seq, prev, user, "pharmacist")
            self.q("COMMIT")
        except BaseException:
            self.q("ROLLBACK")
            raise

    def _pick_kits(self, site: str, arm: str, cutoff: date, vials: int) -> list[str]:
        kits = [
            row[0]
            for row in self.q(
                "SELECT kit_number FROM kits WHERE site_id = %s AND status = 'available' "
                "AND content = %s AND expiry_date > %s ORDER BY expiry_date, kit_number "
                "LIMIT %s",
                site,
                arm,
                cutoff,
                vials,
            ).fetchall()
        ]
        if len(kits) < vials:
            raise RuntimeError(f"ceiling: site {site} has no {arm} kits left")
        return kits

    def _insert_dispensing(self, subject_id: int, visit: str, index: int, *values: Any) -> int:
        visit_date, weight, level, dose, vials, volume, now = values
        return int(
            self.q(
                "INSERT INTO dispensings (subject_id, visit, visit_index, visit_date, "
                "weight_measured_kg, weight_kg, dose_level_mg_per_kg, dose_mg, vials, "
                "drug_volume_ml, dispensed_at, dispensed_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                subject_id,
                visit,
                index,
                visit_date,
                str(weight),
                str(weight),
                str(level),
                str(dose),
                vials,
                str(volume),
                now,
                "ceiling",
            ).fetchone()[0]
        )

    def _dispense_kits(self, dispensing_id: int, kits: list[str], now: Any) -> list[Any]:
        audit = []
        for kit in kits:
            self.q(
                "UPDATE kits SET status = 'dispensed', updated_at = %s WHERE kit_number = %s",
                now,
                kit,
            )
            self.q(
                "INSERT INTO dispensed_kits (dispensing_id, kit_number) VALUES (%s, %s)",
                dispensing_id,
                kit,
            )
            audit.append(
                ("kit.dispensed", "kit", kit, {"status": "available"}, {"status": "dispensed"})
            )
        return audit

    def _lock_audit_head(self) -> tuple[int, str]:
        seq, prev = self.q(
            "SELECT seq, hash FROM audit_head WHERE id = 1" + ("" if self.sqlite else " FOR UPDATE")
        ).fetchone()
        return int(seq), str(prev)

    def _chain(self, audit: list[Any], seq: int, prev: str, user: str, role: str) -> None:
        """Append the entries to the hash chain and move its head."""
        occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for action, entity, entity_id, before, after in audit:
            seq += 1
            content = {
                "seq": seq,
                "occurred_at": occurred_at,
                "username": user,
                "role": role,
                "action": action,
                "entity": entity,
                "entity_id": entity_id,
                "before": _to_json(before),
                "after": _to_json(after),
                "reason": None,
            }
            digest = entry_hash(prev, content)
            self.q(
                "INSERT INTO audit_log (seq, occurred_at, username, role, action, entity, "
                "entity_id, before, after, reason, prev_hash, hash) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                *content.values(),
                prev,
                digest,
            )
            prev = digest
        self.q("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", seq, prev)


def _connect(url: str) -> tuple[bool, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # opened here, used by one worker thread each
        conn = sqlite3.connect(
            parsed.database or "", timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        return True, conn
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return False, psycopg.connect(plain, autocommit=True)


def register_subjects(
    url: str, bench: BenchDatabase, count: int, tag: str = "CEIL"
) -> list[tuple[int, str]]:
    """`count` registered subjects spread over the sites, inserted untimed: (id, site)."""
    sqlite, conn = _connect(url)
    worker = Worker(bench, sqlite, conn)
    subjects = []
    worker.q("BEGIN IMMEDIATE" if sqlite else "BEGIN")
    for n in range(count):
        site = bench.sites[n % len(bench.sites)]
        subject_id = worker.q(
            "INSERT INTO subjects (site_id, screening_number, sex, year_of_birth, status, "
            "created_at, created_by) VALUES (%s, %s, 'F', 1980, 'registered', %s, 'ceiling') "
            "RETURNING id",
            site,
            f"{tag}-{n:05d}",
            worker.now(),
        ).fetchone()[0]
        subjects.append((subject_id, site))
    worker.q("COMMIT")
    conn.close()
    return subjects


def run_ceiling(
    bench: BenchDatabase, clients: int = 32, randomizations: int = 2000
) -> CeilingResult:
    """Randomize `randomizations` subjects with `clients` threads, one connection each, then
    dose each at week 4; each phase's CPU split into this process and the database's backends."""
    subjects = register_subjects(bench.url, bench, randomizations)
    result = CeilingResult(clients, randomizations)
    day_one = datetime.now(UTC).date() - timedelta(days=28)
    shares = [subjects[i::clients] for i in range(clients)]
    database = make_url(bench.url).database
    meter = ProcessMeter(database=database if bench.engine == "postgresql" else None)
    weights: dict[int, float] = {}

    def randomize(worker: Worker, rng: random.Random, subject_id: int, site: str) -> None:
        body = randomize_body(rng, day_one)
        weights[subject_id] = body["weight_kg"]
        worker.randomize(subject_id, site, body, bench.coordinator(site))

    def dispense(worker: Worker, rng: random.Random, subject_id: int, site: str) -> None:
        weight = round(weights[subject_id] * rng.uniform(0.95, 1.12), 1)
        worker.dispense(subject_id, site, weight, bench.pharmacist(site))

    connections = [_connect(bench.url) for _ in range(clients)]
    try:
        for name, step in (("randomize", randomize), ("dispense", dispense)):
            result.phases[name] = _phase(bench, connections, shares, step, meter, name)
    finally:
        for _, conn in connections:
            conn.close()
    return result


def _phase(
    bench: BenchDatabase,
    connections: list[tuple[bool, Any]],
    shares: list[list[tuple[int, str]]],
    step: Any,
    meter: ProcessMeter,
    name: str,
) -> CeilingPhase:
    phase = CeilingPhase()
    lock = threading.Lock()
    start = threading.Barrier(len(shares) + 1)

    def drive(index: int, share: list[tuple[int, str]]) -> None:
        sqlite, conn = connections[index]
        worker = Worker(bench, sqlite, conn)
        rng = random.Random(f"ceiling-{name}-{index}")
        latencies = []
        errors = 0
        start.wait()
        for subject_id, site in share:
            began = time.monotonic()
            try:
                step(worker, rng, subject_id, site)
                latencies.append((time.monotonic() - began) * 1000)
            except (psycopg.Error, sqlite3.Error, RuntimeError):
                errors += 1
        with lock:
            phase.latencies_ms.extend(latencies)
            phase.errors += errors

    threads = [threading.Thread(target=drive, args=(i, s)) for i, s in enumerate(shares)]
    for thread in threads:
        thread.start()
    reading = meter.read()
    start.wait()
    began, ticks = time.monotonic(), cpu_ticks()
    for thread in threads:
        thread.join()
    phase.wall_seconds = time.monotonic() - began
    phase.cpu_busy = busy_fraction(ticks, cpu_ticks())
    phase.cpu_ms = meter.spent_ms(reading, meter.read())
    return phase
