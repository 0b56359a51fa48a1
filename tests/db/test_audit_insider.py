"""An insider with write access to the database attacks the audit evidence; each attack is
caught by the signed checkpoints outside the database or by the replay of the trail against
the business tables (docs/threat-model.md). Both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import AuditEntry, AuditHead, DispensedKit, Kit
from app.domain.audit_chain import entry_hash
from app.services import audit, audit_integrity, checkpoints, emergency_unblinding
from app.services.audit_integrity import IntegrityReport
from app.services.transaction import writing
from tests.services.test_use_cases import INVESTIGATOR, STUDY, _randomize, _register

EVERY = 5


@pytest.fixture
def trail(demo_db: Database, tmp_path: Path) -> Iterator[tuple[Database, int]]:
    """The demo with signed checkpoints (every 5 entries), one randomized subject and five
    registered ones."""
    key = tmp_path / "checkpoint.pem"
    checkpoints.keygen(key)
    log = checkpoints.CheckpointLog(
        tmp_path / "checkpoints.jsonl",
        public_key=checkpoints.public_key_of(checkpoints.public_key_path(key)),
        private_key=checkpoints.private_key_of(key),
        every=EVERY,
    )
    checkpoints.attach(demo_db, log)
    assert audit_integrity.checkpoint_head(demo_db, why="anchor") is not None
    subject = _register(demo_db, "INS-001")
    _randomize(demo_db, subject.subject_id, "insider-1")
    for number in range(EVERY):  # one entry each: the 5-entry checkpoint falls after these
        _register(demo_db, f"INS-1{number:02d}")
    yield demo_db, subject.subject_id
    checkpoints.attach(demo_db, None)


def _verify(db: Database) -> IntegrityReport:
    with db.read() as session:
        return audit_integrity.verify_all(session, checkpoint_log=checkpoints.log_of(db))


def _drop_triggers(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("DROP TRIGGER audit_log_no_delete"))


def _rechain(session: Session) -> None:
    """What the insider does after editing: recompute every hash and the head."""
    prev = "0" * 64
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        entry.prev_hash, entry.hash = prev, "x" + str(entry.seq)  # unique while updating
        session.flush()
        entry.hash = entry_hash(prev, audit.entry_dict(entry))
        prev = entry.hash
    session.flush()
    head = session.get(AuditHead, 1)
    assert head is not None
    head.seq = session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).scalar()
    head.hash = prev


def test_checkpoints_are_signed_and_the_untouched_trail_verifies(
    trail: tuple[Database, int],
) -> None:
    db, _ = trail
    report = _verify(db)
    assert report.ok, report
    assert report.checkpoints is not None and report.checkpoints.checkpoints >= 2
    log = checkpoints.log_of(db)
    assert log is not None
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([*lines, lines[-1].replace('"seq": ', '"seq": 1')]) + "\n")
    assert _verify(db).bad_checkpoint_lines  # a line edited after signing is refused


def test_a_forged_unblinding_appended_with_its_hash_and_head_is_named(
    trail: tuple[Database, int],
) -> None:
    db, subject_id = trail
    with db.write() as session:  # plain INSERT: the triggers allow appending
        head = session.get(AuditHead, 1)
        assert head is not None
        content = {
            "seq": head.seq + 1,
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "username": "investigator",
            "role": "investigator",
            "action": "subject.unblind",
            "entity": "subject",
            "entity_id": str(subject_id),
            "before": '{"unblinded":false}',
            "after": '{"reason_category":"adverse_event","unblinded":true}',
            "reason": "forged emergency to cover a look",
        }
        digest = entry_hash(head.hash, content)
        session.add(AuditEntry(**content, prev_hash=head.hash, hash=digest))
        head.seq, head.hash = head.seq + 1, digest
    report = _verify(db)
    assert report.chain.ok and not report.ok
    gone = [d for d in report.replay.discrepancies if d.table == "unblindings"]
    assert [(d.key, d.seq, d.found) for d in gone] == [(str(subject_id), content["seq"], None)]


@pytest.mark.parametrize("attack", ["rewrite", "delete"])
def test_a_rewritten_or_shortened_chain_is_contradicted_by_the_checkpoints(
    trail: tuple[Database, int], attack: str
) -> None:
    db, subject_id = trail
    with db.read() as session:
        target = session.execute(
            select(AuditEntry.seq).where(
                AuditEntry.action == "subject.randomize", AuditEntry.entity_id == str(subject_id)
            )
        ).scalar_one()
        length = session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).scalar()
    log = checkpoints.log_of(db)
    assert log is not None
    points = sorted(c.seq for c in log.read().checkpoints)
    with db.write() as session:
        _drop_triggers(session)
        if attack == "rewrite":
            entry = session.get(AuditEntry, target)
            assert entry is not None
            entry.reason = "inserted by someone with the database password"
        else:
            session.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": target})
        _rechain(session)
    report = _verify(db)
    assert report.chain.ok  # the chain alone is fooled
    assert report.checkpoints is not None and not report.ok
    expected = min(p for p in points if p >= target) if attack == "rewrite" else target
    assert report.checkpoints.first_bad_seq == expected
    assert report.checkpoints.last_good_seq == max(p for p in points if p < target)
    assert length >= expected


@pytest.mark.parametrize("edit", ["kit_content", "unblinding_row", "dose_level"])
def test_a_business_row_edited_behind_the_service_is_named(
    trail: tuple[Database, int], edit: str
) -> None:
    db, subject_id = trail
    if edit == "unblinding_row":
        with writing(db) as session:
            emergency_unblinding.unblind(
                session,
                study=STUDY,
                actor=INVESTIGATOR,
                subject_id=subject_id,
                reason_category="adverse_event",
                reason="anaphylaxis needs the treatment known",
            )
        assert _verify(db).ok
    with db.write() as session:
        if edit == "kit_content":
            number = session.scalars(select(DispensedKit.kit_number)).first()
            kit = session.get(Kit, number)
            assert kit is not None
            kit.content = next(c for c in STUDY.contents if c != kit.content)
            expected = ("kits", str(number), "content")
        elif edit == "unblinding_row":
            session.execute(
                text("DELETE FROM unblindings WHERE subject_id = :s"), {"s": subject_id}
            )
            session.execute(
                text("UPDATE subjects SET unblinded_at = NULL WHERE id = :s"), {"s": subject_id}
            )
            expected = ("unblindings", str(subject_id), None)
        else:
            session.execute(
                text("UPDATE randomizations SET dose_level_mg_per_kg = 1.2 WHERE subject_id = :s"),
                {"s": subject_id},
            )
            expected = ("randomizations", str(subject_id), "dose_level_mg_per_kg")
    report = _verify(db)
    assert report.chain.ok and not report.ok
    named = {(d.table, d.key, d.field) for d in report.replay.discrepancies}
    assert expected in named
