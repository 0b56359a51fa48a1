"""`verify_rows`, the fast path verification takes: its hashed text must be `canonical`'s, byte
for byte, for every entry. A chain hashed with `entry_hash` (which uses `canonical`) verifies
only if SHA-256 over both texts agrees, so a verified chain is the equality, short of a
SHA-256 collision."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import audit_chain
from app.domain.audit_chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ROW_FIELDS,
    ChainReport,
    entry_hash,
    verify_chain,
    verify_rows,
)

Entry = dict[str, Any]

tricky = st.text(
    alphabet=st.characters(codec="utf-8")
    | st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\u2028", "é", "確"]),
    max_size=30,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky, inner, max_size=4),
    max_leaves=12,
)
stored_json = json_values.map(lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")))
"""before/after as the service stores them: JSON text (app/services/audit.py `to_json`)."""
stored_at = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

as_stored = st.fixed_dictionaries(
    {
        "occurred_at": stored_at | tricky,
        "username": tricky,
        "role": tricky,
        "action": tricky,
        "entity": tricky,
        "entity_id": tricky,
        "before": stored_json | tricky,
        "after": stored_json | tricky,
        "reason": st.none() | tricky,
    }
)
"""What a database row holds: strings everywhere, null only as the reason."""

anything = json_values | st.datetimes(timezones=st.just(UTC)) | st.datetimes()
arbitrary = st.fixed_dictionaries(
    {k: anything for k in HASHED_FIELDS if k != "seq"},
)
"""Any value in any field (an exported file edited by hand, a nested before/after, a datetime
object): the fast path hands these to `canonical`."""


def build(items: list[Entry], seqs: list[Any] | None = None) -> list[Entry]:
    chain: list[Entry] = []
    prev = GENESIS_HASH
    for position, content in enumerate(items, start=1):
        entry = {"seq": seqs[position - 1] if seqs else position, **content}
        digest = entry_hash(prev, entry)
        chain.append({**entry, "prev_hash": prev, "hash": digest})
        prev = digest
    return chain


def rows(chain: list[Entry]) -> list[tuple[Any, ...]]:
    return [tuple(entry[k] for k in ROW_FIELDS) for entry in chain]


def refuse(_entry: Any) -> str:
    raise AssertionError("the fast path fell back to canonical")


@settings(max_examples=300, deadline=None)
@given(items=st.lists(as_stored, min_size=1, max_size=6))
def test_stored_entries_hash_as_canonical_does_without_canonical(items: list[Entry]) -> None:
    chain = build(items)
    with mock.patch.object(audit_chain, "canonical", refuse):
        report = verify_rows([rows(chain)])
    assert report == ChainReport(True, len(chain), chain[-1]["hash"], None)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(arbitrary, min_size=1, max_size=4),
    first_seq=st.sampled_from([1, True, 1.0]),
)
def test_arbitrary_entries_hash_as_canonical_does(items: list[Entry], first_seq: Any) -> None:
    chain = build(items, [first_seq, *range(2, len(items) + 1)])
    assert verify_rows([rows(chain)]) == ChainReport(True, len(chain), chain[-1]["hash"], None)
    assert verify_chain(chain).ok


def _spelled(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(as_stored, min_size=1, max_size=6), data=st.data())
def test_a_tampered_field_breaks_at_its_entry(items: list[Entry], data: st.DataObject) -> None:
    chain = build(items)
    k = data.draw(st.integers(1, len(chain)), label="k")
    field = data.draw(st.sampled_from(sorted(set(HASHED_FIELDS) - {"seq"})), label="field")
    old = chain[k - 1][field]
    new = data.draw((anything | tricky).filter(lambda v: _spelled(v) != _spelled(old)))
    chain[k - 1] = {**chain[k - 1], field: new}
    assert verify_rows([rows(chain)]) == ChainReport(
        False, k - 1, chain[k - 2]["hash"] if k > 1 else GENESIS_HASH, k
    )


@settings(max_examples=60, deadline=None)
@given(items=st.lists(as_stored, min_size=1, max_size=12), data=st.data())
def test_chunks_verify_as_one_and_progress_counts_each(
    items: list[Entry], data: st.DataObject
) -> None:
    chain = rows(build(items))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(chain)), max_size=4), label="cuts"))
    bounds = [0, *cuts, len(chain)]
    chunks = [chain[a:b] for a, b in itertools.pairwise(bounds)]
    told: list[int] = []
    assert verify_rows(chunks, progress=told.append) == verify_rows([chain])
    assert told == [len(c) for c in chunks]


def test_progress_stops_before_the_chunk_that_breaks() -> None:
    items = [{k: f"v{n}" for k in HASHED_FIELDS if k != "seq"} for n in range(6)]
    chain = rows(build(items))
    at = ROW_FIELDS.index("reason")
    chain[4] = (*chain[4][:at], "rewritten", *chain[4][at + 1 :])
    told: list[int] = []
    report = verify_rows([chain[:2], chain[2:4], chain[4:]], progress=told.append)
    assert (report.ok, report.first_bad_seq, report.entries, told) == (False, 5, 4, [2, 2])


def test_a_datetime_object_hashes_as_its_str() -> None:
    # what default=str gives in canonical: verification agrees with the writer's hash
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    items = [{**{k: "x" for k in HASHED_FIELDS if k != "seq"}, "occurred_at": at}]
    chain = build(items)
    assert verify_rows([rows(chain)]).ok
    chain[0]["occurred_at"] = str(at)  # the same canonical text: the same hash
    assert verify_rows([rows(chain)]).ok


@settings(max_examples=100, deadline=None)
@given(items=st.lists(as_stored, min_size=1, max_size=6), data=st.data())
def test_an_entry_missing_a_field_breaks_at_its_entry(
    items: list[Entry], data: st.DataObject
) -> None:
    """A damaged export (a field cut from a line) is reported as a break there, not a crash."""
    chain = build(items)
    k = data.draw(st.integers(1, len(chain)), label="k")
    present = [f for f in ROW_FIELDS if chain[k - 1][f] is not None]
    field = data.draw(st.sampled_from(present), label="field")
    chain[k - 1] = {f: v for f, v in chain[k - 1].items() if f != field}
    assert verify_chain(chain) == ChainReport(
        False, k - 1, chain[k - 2]["hash"] if k > 1 else GENESIS_HASH, k
    )
