"""The hash chain verified in parts, by several processes at once (`irt audit verify --jobs`).

One process verifies about 250,000 entries a second; hashing is not what limits it but the
Python work per entry (fetching the row, building its canonical text). The chain is cut into
parts of consecutive entries; each part is verified by a worker process over its own database
connection, reading plain driver rows, starting from the stored hash of the entry before it
(`verify_rows(start_after=...)`). The part before vouches for that hash, so the parts together prove
what one pass over the whole chain proves: every entry recomputes to its stored hash, links to
the one before, and the numbering has no gap. The first failing part names the first bad
entry. Every part reads only up to the head the caller read first. On PostgreSQL the workers
also share one snapshot, exported by the caller's transaction as the parts start
(`pg_export_snapshot`), so no part sees a row another part did not; on SQLite each worker
reads the trail as it is when it starts (entries are only appended, and the triggers refuse
changes to those there).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db.models import AuditEntry, AuditHead
from app.domain.audit_chain import GENESIS_HASH, ROW_FIELDS, ChainReport, verify_rows
from app.services import audit

PART = 50_000
"""Entries a task verifies: the progress moves by parts; small enough to share the work. A
trail of fewer than two parts is verified in one process (starting workers would cost more
than they save)."""
FETCH = 1_000


@dataclass(frozen=True)
class _Task:
    url: str
    snapshot: str | None
    first: int
    last: int
    prev_hash: str


def verify(
    session: Session,
    *,
    jobs: int,
    progress: Callable[[int], None] | None = None,
    part: int = PART,
) -> ChainReport:
    """`audit.verify` with `jobs` processes; one when asked for one or the trail is short."""
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    if jobs <= 1 or head is None or head.seq < 2 * part:
        return audit.verify(session, progress=progress)
    bind = session.get_bind()
    url = bind.engine.url.render_as_string(hide_password=False)
    postgres = bind.dialect.name == "postgresql"
    snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar() if postgres else None
    starts = list(range(1, head.seq + 1, part))
    seams = dict(
        session.execute(
            select(AuditEntry.seq, AuditEntry.hash).where(
                AuditEntry.seq.in_([s - 1 for s in starts if s > 1])
            )
        ).all()
    )
    tasks = [
        _Task(
            url,
            snapshot,
            first,
            min(first + part - 1, head.seq),
            GENESIS_HASH if first == 1 else seams.get(first - 1, ""),
        )
        for first in starts
    ]
    reports: dict[int, ChainReport] = {}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_verify_part, task): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            reports[task.first] = future.result()
            if progress is not None:
                progress(task.last - task.first + 1)
    for task in tasks:
        report = reports[task.first]
        if not report.ok or report.entries != task.last:
            bad = report.first_bad_seq if not report.ok else report.entries + 1
            return ChainReport(False, report.entries, report.head_hash, bad)
    last = reports[tasks[-1].first]
    if last.head_hash != head.hash:
        return ChainReport(False, last.entries, last.head_hash, last.entries + 1)
    return last


def _verify_part(task: _Task) -> ChainReport:
    """In a worker: the entries `first` to `last`, after the stored hash of the one before."""
    return verify_rows(_rows(task), start_after=(task.first - 1, task.prev_hash))


_SELECT = (
    f"SELECT {', '.join(ROW_FIELDS)} FROM audit_log WHERE seq BETWEEN {{a}} AND {{b}} ORDER BY seq"
)


def _rows(task: _Task) -> Iterator[list[Any]]:
    url = make_url(task.url)
    if url.get_backend_name() == "sqlite":
        yield from _sqlite_rows(str(url.database), task)
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as pg:
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg.read_only = True
        if task.snapshot is not None:  # the first statement of the transaction
            pg.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(task.snapshot)))
        with pg.cursor(name="audit_part") as cursor:
            cursor.execute(_SELECT.format(a="%s", b="%s"), (task.first, task.last))
            while rows := cursor.fetchmany(FETCH):
                yield rows


def _sqlite_rows(path: str, task: _Task) -> Iterator[list[Any]]:
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute(_SELECT.format(a="?", b="?"), (task.first, task.last))
        while rows := cursor.fetchmany(FETCH):
            yield rows
    finally:
        conn.close()
