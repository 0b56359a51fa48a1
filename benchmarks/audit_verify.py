"""Audit verification against raw SHA-256 over the same bytes.

`python -m benchmarks.audit_verify --entries N --engine sqlite|postgresql` builds a fresh
migrated database holding a chain of N audit entries (bulk inserted, COPY on PostgreSQL,
hashed with the service's own `entry_hash`), then measures in the same run
(a) the service's verification (what `irt audit verify` runs first: `app.services.audit.verify`
in one process, and `app.services.audit_parts.verify` with `--jobs`, default the CPUs):
entries/s and bytes/s over the hashed bytes, and
(b) raw `hashlib.sha256(...).digest()` in a tight loop over the very same bytes (previous hash,
"\\n", canonical JSON, UTF-8), one message an entry as the chain needs it; also one SHA-256
over all the bytes at once, the C ceiling without any per-call cost.
It prints the ratio (a)/(b), and where (a) goes: fetching the rows alone, and verifying the
same rows held in memory. `--profile` adds a cProfile of (a) (slower: the split, not the
speed, is what it is for). The database is dropped afterwards unless `--keep`.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app.db.engine import Database
from app.domain.audit_chain import HASHED_FIELDS, canonical, entry_hash, verify_rows
from app.services import audit, audit_parts
from benchmarks.setup import create_database, drop_database

CHUNK = 50_000
COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
"""The audit_log columns a built entry fills, in the order its row holds them."""
_ACTIONS = (
    ("site_coordinator", "subject.register", "subject"),
    ("site_coordinator", "subject.randomize", "subject"),
    ("pharmacist", "subject.dispense", "subject"),
    ("pharmacist", "kit.dispensed", "kit"),
    ("supply_manager", "kit.received", "kit"),
    ("site_coordinator", "auth.login", "user"),
)
_REASONS = (None, None, None, None, "Gewicht falsch übertragen", 'typo in "weight"\nline 2')


def _js(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _contents(count: int, first_seq: int) -> Iterator[dict[str, Any]]:
    """Entries shaped like the service's: a few users and actions, JSON before/after (nested,
    now and then non-ASCII), a reason on some, timestamps as the service stores them."""
    rng = random.Random(f"audit-verify-{count}")
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    for seq in range(first_seq, first_seq + count):
        clock += timedelta(milliseconds=rng.randint(1, 900))
        role, action, entity = rng.choice(_ACTIONS)
        site = f"S{rng.randint(1, 32):02d}"
        after: dict[str, Any] = {
            "site_id": site,
            "visit": rng.choice(["D1", "W4", "W8"]),
            "kits": [f"Z{rng.randint(1, 10**8):08d}" for _ in range(rng.randint(0, 3))],
            "request_id": f"{rng.getrandbits(64):016x}",
        }
        if seq % 7 == 0:
            after["note"] = {"de": "Prüfung ok", "ja": "確認", "n": [1, 2.5, None, True]}
        yield {
            "seq": seq,
            "occurred_at": clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "username": f"{role[:5]}-{site.lower()}",
            "role": role,
            "action": action,
            "entity": entity,
            "entity_id": str(rng.randint(1, 10**6)),
            "before": "{}" if seq % 3 else _js({"status": "available", "site_id": site}),
            "after": _js(after),
            "reason": rng.choice(_REASONS),
        }


def build(url: str, entries: int) -> list[bytes]:
    """Append `entries` chained entries after the head; the hashed bytes of each, in order."""
    messages: list[bytes] = []
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        conn: Any = sqlite3.connect(str(make_url(url).database), isolation_level=None)
        conn.execute("BEGIN")
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    else:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        conn = psycopg.connect(plain)
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    rows: list[tuple[Any, ...]] = []
    for content in _contents(entries, seq + 1):
        messages.append(f"{prev}\n{canonical(content)}".encode())
        digest = entry_hash(prev, content)
        rows.append((*content.values(), prev, digest))
        prev = digest
        if len(rows) == CHUNK:
            _insert(conn, backend, rows)
            rows = []
    _insert(conn, backend, rows)
    mark = "?" if backend == "sqlite" else "%s"
    conn.execute(f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1",
                 (seq + entries, prev))  # fmt: skip
    if backend == "sqlite":
        conn.execute("COMMIT")
    else:
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE audit_log")
    conn.close()
    return messages


def _insert(conn: Any, backend: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if backend == "sqlite":
        marks = ", ".join("?" for _ in COLUMNS)
        conn.executemany(f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        return
    with conn.cursor() as cur, cur.copy(f"COPY audit_log ({', '.join(COLUMNS)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


def raw_sha256(messages: list[bytes]) -> tuple[float, float]:
    """Seconds for one sha256 per message in a tight loop, and for one over all the bytes."""
    sha = hashlib.sha256
    began = time.perf_counter()
    for message in messages:
        sha(message).digest()
    loop = time.perf_counter() - began
    joined = b"".join(messages)
    began = time.perf_counter()
    hashlib.sha256(joined).digest()
    return loop, time.perf_counter() - began


def service_verify(url: str, *, profile: bool, jobs: int = 1) -> tuple[float, int, str]:
    """Seconds for the service's verification in a read transaction, as `irt audit verify
    --jobs` runs it (app/services/audit_parts.py; one job is `audit.verify`)."""
    db = Database(url)
    try:
        profiler = cProfile.Profile() if profile else None
        with db.read() as session:
            began = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            report = audit_parts.verify(session, jobs=jobs)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - began
        if not report.ok:
            raise SystemExit(f"verification failed: {report}")
        text = ""
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
            text = out.getvalue()
        return seconds, report.entries, text
    finally:
        db.dispose()


def breakdown(url: str) -> tuple[float, float]:
    """Where (a) goes: seconds to fetch the service's rows (Core, same query and chunks, no
    hashing), and to verify the same rows already in memory (text, hash, compare; no fetch)."""
    db = Database(url)
    try:
        with db.read() as session, session.connection().execute(audit.chain_rows()) as result:
            began = time.perf_counter()
            for part in result.partitions():
                for _row in part:
                    pass
            fetch = time.perf_counter() - began
        with db.read() as session:
            held = [tuple(row) for row in session.connection().execute(audit.chain_rows())]
        began = time.perf_counter()
        report = verify_rows([held])
        hashing = time.perf_counter() - began
        assert report.ok
        return fetch, hashing
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (irt audit verify --jobs)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the service's run")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="irt-audit-verify-"))
    url = create_database(args.engine, workdir, label="auditverify")
    try:
        began = time.perf_counter()
        messages = build(url, args.entries)
        built = time.perf_counter() - began
        print(f"built {args.entries} entries on {args.engine} in {built:.1f} s")
        size = sum(len(m) for m in messages)
        service = min(service_verify(url, profile=False)[0] for _ in range(args.repeat))
        parallel = min(
            service_verify(url, profile=False, jobs=args.jobs)[0] for _ in range(args.repeat)
        )
        raw = min(raw_sha256(messages) for _ in range(args.repeat))
        fetch, hashing = min(breakdown(url) for _ in range(args.repeat))
        entries = len(messages)
        print(f"hashed bytes: {size / 1e6:.1f} MB, {size / entries:.0f} B an entry")
        _line("(a) service verify, 1 process", entries, size, service)
        _line(f"(a) service verify, {args.jobs} processes", entries, size, parallel)
        _line("(b) raw sha256, one an entry", entries, size, raw[0])
        _line("    raw sha256, all at once", entries, size, raw[1])
        print(
            f"ratio (a)/(b): {raw[0] / service:.1%} one process, "
            f"{raw[0] / parallel:.1%} with {args.jobs}"
        )
        print("where (a) goes (each measured alone):")
        _line("    fetch rows only (Core)", entries, size, fetch)
        _line("    verify rows held in memory", entries, size, hashing)
        print(f"    of which raw sha256: {raw[0] / hashing:.0%}")
        if args.profile:
            print(service_verify(url, profile=True)[2])
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)


def _line(label: str, entries: int, size: int, seconds: float) -> None:
    print(
        f"{label:30s} {seconds:7.3f} s  {entries / seconds:12,.0f} entries/s  "
        f"{size / seconds / 1e6:8.1f} MB/s"
    )


if __name__ == "__main__":
    main()
