"""The monitor's full check of the audit evidence: the hash chain, the chain against the signed
checkpoints outside the database, and the replay of the trail against the business rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.engine import Database
from app.db.models import (
    AuditEntry,
    AuditHead,
    Cohort,
    DispensedKit,
    Dispensing,
    Kit,
    KitImport,
    Randomization,
    RandomizationList,
    Site,
    Study,
    Subject,
    Unblinding,
)
from app.db.randomization_counts import RandomizationCount
from app.domain.audit_chain import ChainReport
from app.domain.audit_replay import Discrepancy, ReplayReport, replay
from app.domain.checkpoints import Checkpoint, CheckpointReport, check_chain
from app.services import audit_parts, kit_counts, site_stock, subject_counts
from app.services.checkpoints import CheckpointLog, key_id, log_of


@dataclass(frozen=True)
class IntegrityReport:
    ok: bool
    chain: ChainReport
    checkpoints: CheckpointReport | None
    """None: no checkpoint file is configured for this service."""
    bad_checkpoint_lines: list[str]
    replay: ReplayReport


def _entries(session: Session) -> Iterator[dict[str, Any]]:
    query = select(
        AuditEntry.seq, AuditEntry.action, AuditEntry.entity_id, AuditEntry.after, AuditEntry.reason
    ).order_by(AuditEntry.seq)
    for seq, action, entity_id, after, reason in session.execute(query):
        yield {
            "seq": seq,
            "action": action,
            "entity_id": entity_id,
            "after": after,
            "reason": reason,
        }


def business_rows(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """The replayed tables as the database holds them, keyed as the trail names their rows."""
    kits_of: dict[int, list[str]] = {}
    for dispensing_id, number in session.execute(
        select(DispensedKit.dispensing_id, DispensedKit.kit_number)
    ):
        kits_of.setdefault(dispensing_id, []).append(number)
    rows: dict[str, dict[str, dict[str, Any]]] = {
        "study": {
            s.code: {
                "definition_sha256": s.definition_sha256,
                "phase2_dose_mg_per_kg": s.phase2_dose_mg_per_kg,
            }
            for s in session.scalars(select(Study))
        },
        "cohorts": {
            c.code: {"status": c.status, "dose_mg_per_kg": c.dose_mg_per_kg}
            for c in session.scalars(select(Cohort))
        },
        "sites": {s.id: {"active": s.active} for s in session.scalars(select(Site))},
        "randomization_lists": {
            r.scope: {"sha256": r.sha256, "slot_count": r.slot_count, "source": r.source}
            for r in session.scalars(select(RandomizationList))
        },
        "kit_imports": {
            str(i.id): {"sha256": i.sha256, "kit_count": i.kit_count}
            for i in session.scalars(select(KitImport))
        },
        "kits": {
            number: {"content": content, "lot": lot, "expiry_date": expiry, "import_id": import_id}
            for number, content, lot, expiry, import_id in session.execute(
                select(Kit.kit_number, Kit.content, Kit.lot, Kit.expiry_date, Kit.import_id)
            )
        },
        "subjects": {
            str(s.id): {
                "site_id": s.site_id,
                "screening_number": s.screening_number,
                "sex": s.sex,
                "year_of_birth": s.year_of_birth,
                "status": s.status,
                "unblinded": s.unblinded_at is not None,
            }
            for s in session.scalars(select(Subject))
        },
        "randomizations": {
            str(r.subject_id): {
                "randomization_number": r.randomization_number,
                "stage": r.stage,
                "stratum": r.stratum,
                "actual_stratum": r.actual_stratum,
                "slot_id": r.slot_id,
                **_dose(r),
            }
            for r in session.scalars(select(Randomization))
        },
        "dispensings": {
            f"{d.subject_id}/{d.visit}": {
                "visit_date": d.visit_date,
                "kits": ",".join(sorted(kits_of.get(d.id, []))),
                **_dose(d),
            }
            for d in session.scalars(
                select(Dispensing).where(Dispensing.entered_in_error_at.is_(None))
            )
        },
        "unblindings": {
            str(u.subject_id): {"reason_category": u.reason_category, "reason": u.reason}
            for u in session.scalars(select(Unblinding))
        },
    }
    return rows


def _dose(row: Randomization | Dispensing) -> dict[str, Any]:
    return {
        "dose_level_mg_per_kg": row.dose_level_mg_per_kg,
        "weight_kg": row.weight_kg,
        "dose_mg": row.dose_mg,
        "vials": row.vials,
    }


def replay_trail(session: Session) -> ReplayReport:
    """Every business row the audit trail does not explain (app/domain/audit_replay.py), and
    every kept randomization, subject or kit count that differs from the rows it counts, and
    every kit whose kept shipment, and every randomization whose kept latest dispensing,
    differs from the rows it copies."""
    replayed = replay(_entries(session), business_rows(session))
    drift = [
        *count_drift(session),
        *subject_counts.drift(session),
        *kit_counts.drift(session),
        *site_stock.shipment_drift(session),
        *latest_drift(session),
    ]
    if not drift:
        return replayed
    return replace(replayed, ok=False, discrepancies=[*replayed.discrepancies, *drift])


def count_drift(session: Session) -> list[Discrepancy]:
    """`randomization_counts` against a count of `randomizations` (the triggers keep them
    equal; a count edited by hand would let a cap be passed or a used slot be drawn again)."""
    kept = {
        (scope, stratum): n
        for scope, stratum, n in session.execute(
            select(
                RandomizationCount.scope, RandomizationCount.stratum, RandomizationCount.randomized
            )
        )
    }
    counted = {
        (scope, stratum): n
        for scope, stratum, n in session.execute(
            select(Randomization.scope, Randomization.stratum, func.count()).group_by(
                Randomization.scope, Randomization.stratum
            )
        )
    }
    return [
        Discrepancy(
            "randomization_counts",
            f"{scope}/{stratum}",
            "randomized",
            str(kept.get((scope, stratum), 0)),
            str(counted.get((scope, stratum), 0)),
            None,
            "the kept count differs from the randomizations it counts",
        )
        for scope, stratum in sorted(set(kept) | set(counted))
        if kept.get((scope, stratum), 0) != counted.get((scope, stratum), 0)
    ]


def _latest(column: InstrumentedAttribute[int]) -> ScalarSelect[int]:
    """The column of the subject's latest standing dispensing (correlated with the query's
    `Randomization`), through the index of standing dispensings in visit order."""
    return (
        select(column)
        .where(
            Dispensing.subject_id == Randomization.subject_id,
            Dispensing.entered_in_error_at.is_(None),
        )
        .order_by(Dispensing.visit_index.desc())
        .limit(1)
        .correlate(Randomization)
        .scalar_subquery()
    )


def latest_drift(session: Session) -> list[Discrepancy]:
    """Every randomization whose kept latest dispensing (visit index and vials) differs from
    the subject's standing dispensings: an edited one would misstate the site's forecast."""
    index, vials = _latest(Dispensing.visit_index), _latest(Dispensing.vials)
    rows = session.execute(
        select(
            Randomization.subject_id,
            Randomization.last_visit_index,
            index,
            Randomization.last_vials,
            vials,
        )
        .where(
            Randomization.last_visit_index.is_distinct_from(index)
            | Randomization.last_vials.is_distinct_from(vials)
        )
        .order_by(Randomization.subject_id)
    )
    found: list[Discrepancy] = []
    for subject_id, kept_index, real_index, kept_vials, real_vials in rows:
        for name, kept, real in (
            ("last_visit_index", kept_index, real_index),
            ("last_vials", kept_vials, real_vials),
        ):
            if kept != real:
                found.append(
                    Discrepancy(
                        "randomizations",
                        str(subject_id),
                        name,
                        None if kept is None else str(kept),
                        None if real is None else str(real),
                        None,
                        "the kept latest dispensing differs from the subject's dispensings",
                    )
                )
    return found


def check_checkpoints(session: Session, checkpoint_log: CheckpointLog) -> CheckpointReport:
    """The stored chain against the signed checkpoints; a forged line counts as none."""
    chain = {
        seq: digest for seq, digest in session.execute(select(AuditEntry.seq, AuditEntry.hash))
    }
    return check_chain(checkpoint_log.read().checkpoints, chain, length=max(chain, default=0))


def verify_all(
    session: Session,
    *,
    checkpoint_log: CheckpointLog | None,
    progress: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> IntegrityReport:
    """Chain, checkpoints and replay in one read transaction (one consistent snapshot);
    `progress` is told the entries as the chain verifies them (the longest step), by `jobs`
    processes (app/services/audit_parts.py: the command line's, never a web worker's)."""
    chain = audit_parts.verify(session, jobs=jobs, progress=progress)
    points = None if checkpoint_log is None else check_checkpoints(session, checkpoint_log)
    bad_lines = [] if checkpoint_log is None else checkpoint_log.read().bad_lines
    replayed = replay_trail(session)
    ok = chain.ok and replayed.ok and not bad_lines and (points is None or points.ok)
    return IntegrityReport(ok, chain, points, bad_lines, replayed)


def checkpoint_head(db: Database, *, why: str) -> Checkpoint | None:
    """Sign the chain head as it is now (`irt audit checkpoint`): anchors a trail written
    before checkpoints were configured, or marks a moment such as a database lock."""
    checkpoint_log = log_of(db)
    if checkpoint_log is None:
        return None
    with db.read() as session:
        head = session.get(AuditHead, 1)
        seq, digest = (head.seq, head.hash) if head is not None else (0, "")
    if seq == 0:
        return None
    return checkpoint_log.append(seq=seq, hash=digest, why=why)


def summary(report: IntegrityReport, *, max_rows: int = 200) -> dict[str, Any]:
    """The report as the API and the pages show it; at most `max_rows` discrepancies."""
    chain, points = report.chain, report.checkpoints
    first_bad = chain.first_bad_seq
    if first_bad is None and points is not None:
        first_bad = points.first_bad_seq
    return {
        "ok": report.ok,
        "entries": chain.entries,
        "head_hash": chain.head_hash,
        "first_bad_seq": first_bad,
        "chain_ok": chain.ok,
        "checkpoints": None if points is None else asdict(points),
        "bad_checkpoint_lines": report.bad_checkpoint_lines,
        "replay": {
            "ok": report.replay.ok,
            "entries": report.replay.entries,
            "rows": report.replay.rows,
            # with the line a reader is shown (the page prints it; the API's model leaves it)
            "discrepancies": [
                asdict(d) | {"line": d.line} for d in report.replay.discrepancies[:max_rows]
            ],
        },
    }


def checkpoints_view(db: Database, *, count: int = 20) -> dict[str, Any]:
    """The latest checkpoints and the public key that verifies them (published to auditors)."""
    checkpoint_log = log_of(db)
    if checkpoint_log is None:
        return {"public_key_pem": None, "key_id": None, "checkpoints": []}
    pem = checkpoint_log.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {
        "public_key_pem": pem,
        "key_id": key_id(checkpoint_log.public_key),
        "checkpoints": [asdict(c) for c in reversed(checkpoint_log.latest(count))],
    }
