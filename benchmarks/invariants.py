"""Invariants after a run, read straight from the database (SQL, no service code).

`check(database_url, acknowledged)` returns the violations (an empty list when all hold):
- each randomized subject has exactly one randomization and one slot, of its scope and stratum;
- within a list scope and stratum the used slots are 1..n, with no gap and no repeat;
- no kit is dispensed twice; a dispensed kit is `dispensed`, of the subject's arm, at its site;
- every 201 the clients saw (registration, randomization, dosing visit) is in the database, as
  acknowledged (same randomization number, same kits);
- the audit chain verifies (recomputed with app.domain.audit_chain) and ends at the chain head;
- audit entries match state changes one for one (registrations, randomizations, dosing visits,
  kits dispensed).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import create_engine, text

from app.db.engine import normalize_url
from app.domain.audit_chain import verify_chain

MAX_LISTED = 10


def _rows(conn: Any, sql: str) -> list[Any]:
    return list(conn.execute(text(sql)).all())


def check(database_url: str, acknowledged: list[dict[str, Any]]) -> list[str]:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            return _check(conn, acknowledged)
    finally:
        engine.dispose()


def _check(conn: Any, acknowledged: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []

    def fail(message: str) -> None:
        problems.append(message)

    subjects = {r.id: r for r in _rows(conn, "SELECT id, site_id, status FROM subjects")}
    rands = _rows(
        conn,
        "SELECT r.id, r.subject_id, r.slot_id, r.randomization_number, r.scope, r.stratum, "
        "s.stratum AS slot_stratum, s.sequence, s.arm, l.scope AS slot_scope "
        "FROM randomizations r JOIN randomization_slots s ON s.id = r.slot_id "
        "JOIN randomization_lists l ON l.id = s.list_id",
    )
    total_rands = _rows(conn, "SELECT count(*) AS n FROM randomizations")[0].n
    if total_rands != len(rands):
        fail(f"{total_rands - len(rands)} randomizations point to no slot")
    by_subject = Counter(r.subject_id for r in rands)
    for subject_id, n in by_subject.items():
        if n != 1:
            fail(f"subject {subject_id} has {n} randomizations")
    for slot_id, n in Counter(r.slot_id for r in rands).items():
        if n != 1:
            fail(f"slot {slot_id} is used {n} times")
    for number, n in Counter(r.randomization_number for r in rands).items():
        if n != 1:
            fail(f"randomization number {number} is given {n} times")
    for r in rands:
        if (r.scope, r.stratum) != (r.slot_scope, r.slot_stratum):
            fail(f"subject {r.subject_id}: slot {r.slot_id} is not of its scope and stratum")
        subject = subjects.get(r.subject_id)
        if subject is None or subject.status not in ("randomized", "unblinded", "withdrawn"):
            fail(f"subject {r.subject_id} is randomized but its status says otherwise")
    for subject in subjects.values():
        if subject.status == "randomized" and subject.id not in by_subject:
            fail(f"subject {subject.id} is marked randomized without a randomization")
    sequences: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rands:
        sequences[(r.slot_scope, r.slot_stratum)].append(r.sequence)
    for (scope, stratum), used in sorted(sequences.items()):
        if sorted(used) != list(range(1, len(used) + 1)):
            missing = sorted(set(range(1, max(used) + 1)) - set(used))[:MAX_LISTED]
            fail(f"{scope} / {stratum}: slots used are not 1..{len(used)} (gaps at {missing})")

    arm_of = {r.subject_id: r.arm for r in rands}
    given = _rows(
        conn,
        "SELECT dk.kit_number, dk.replaced_at, d.subject_id, d.visit, d.id AS dispensing_id, "
        "k.status, k.content, k.site_id "
        "FROM dispensed_kits dk JOIN dispensings d ON d.id = dk.dispensing_id "
        "JOIN kits k ON k.kit_number = dk.kit_number",
    )
    for number, n in Counter(g.kit_number for g in given).items():
        if n != 1:
            fail(f"kit {number} is dispensed {n} times")
    for g in given:
        if g.replaced_at is None and g.status != "dispensed":
            fail(f"kit {g.kit_number} was given to subject {g.subject_id} but is {g.status}")
        if g.content != arm_of.get(g.subject_id):
            fail(f"kit {g.kit_number} of subject {g.subject_id} is not of the subject's arm")
        subject = subjects.get(g.subject_id)
        if subject is None or g.site_id != subject.site_id:
            fail(f"kit {g.kit_number} of subject {g.subject_id} is not at the subject's site")
    given_numbers = {g.kit_number for g in given}
    for row in _rows(conn, "SELECT kit_number FROM kits WHERE status = 'dispensed'"):
        if row.kit_number not in given_numbers:
            fail(f"kit {row.kit_number} is dispensed but given to nobody")
    # one standing dispensing per visit; one entered in error stays beside it (docs/visits.md)
    dispensings = _rows(
        conn, "SELECT id, subject_id, visit FROM dispensings WHERE entered_in_error_at IS NULL"
    )
    for (subject_id, visit), n in Counter((d.subject_id, d.visit) for d in dispensings).items():
        if n != 1:
            fail(f"subject {subject_id} has visit {visit} dispensed {n} times")
    kits_of: dict[tuple[int, str], set[str]] = defaultdict(set)
    for g in given:
        if g.replaced_at is None:
            kits_of[(g.subject_id, g.visit)].add(g.kit_number)
    for subject_id in by_subject:
        if (subject_id, "D1") not in kits_of:
            fail(f"subject {subject_id} is randomized without day 1 kits")

    numbers = {r.subject_id: r.randomization_number for r in rands}
    for ack in acknowledged:
        subject_id = ack["subject_id"]
        body = ack["body"]
        if ack["endpoint"] == "register":
            if subject_id not in subjects:
                fail(f"acknowledged registration of subject {subject_id} is lost")
        elif ack["endpoint"] == "randomize":
            if numbers.get(subject_id) != body["randomization_number"]:
                fail(
                    f"acknowledged randomization {body['randomization_number']} of subject "
                    f"{subject_id} is not in the database (found {numbers.get(subject_id)})"
                )
            if kits_of.get((subject_id, "D1"), set()) != set(body["kits"]):
                fail(f"acknowledged day 1 kits of subject {subject_id} differ from the database")
        elif ack["endpoint"] == "dispense" and kits_of.get(
            (subject_id, body["visit"]), set()
        ) != set(body["kits"]):
            fail(
                f"acknowledged visit {body['visit']} kits of subject {subject_id} "
                "differ from the database"
            )

    entries = [
        r._asdict()
        for r in _rows(
            conn,
            "SELECT seq, occurred_at, username, role, action, entity, entity_id, before, after, "
            "reason, prev_hash, hash FROM audit_log ORDER BY seq",
        )
    ]
    report = verify_chain(entries)
    if not report.ok:
        fail(f"audit chain broken at entry {report.first_bad_seq}")
    head = _rows(conn, "SELECT seq, hash FROM audit_head WHERE id = 1")
    if not head or (head[0].seq, head[0].hash) != (report.entries, report.head_hash):
        fail("audit chain does not end at the chain head")

    audited: dict[str, Counter[str]] = defaultdict(Counter)
    dispense_audits: Counter[tuple[str, str]] = Counter()
    for e in entries:
        audited[e["action"]][e["entity_id"]] += 1
        if e["action"] == "subject.dispense":
            dispense_audits[(e["entity_id"], json.loads(e["after"]).get("visit"))] += 1
    _one_for_one(fail, "subject.register", audited, [str(s) for s in subjects])
    _one_for_one(fail, "subject.randomize", audited, [str(s) for s in by_subject])
    expected_dispense = Counter((str(d.subject_id), d.visit) for d in dispensings)
    if dispense_audits != expected_dispense:
        diff = (dispense_audits - expected_dispense) + (expected_dispense - dispense_audits)
        fail(f"dosing visits and their audit entries differ: {sorted(diff)[:MAX_LISTED]}")
    _one_for_one(fail, "kit.dispensed", audited, sorted(given_numbers))
    return problems


def _one_for_one(
    fail: Any, action: str, audited: dict[str, Counter[str]], expected_ids: list[str]
) -> None:
    expected = Counter(expected_ids)
    seen = audited.get(action, Counter())
    if seen != expected:
        diff = sorted(((seen - expected) + (expected - seen)).keys())[:MAX_LISTED]
        fail(f"{action}: audit entries and state differ for {diff}")
