"""The audit hash chain: entry hashing and verification that names the first broken entry."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.audit_chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical,
    entry_hash,
    verify_chain,
)

Entry = dict[str, Any]

contents = st.fixed_dictionaries(
    {
        "occurred_at": st.text(max_size=30),
        "username": st.text(max_size=12),
        "role": st.sampled_from(["site_coordinator", "sponsor_admin", "unblinded_monitor"]),
        "action": st.text(max_size=12),
        "entity": st.text(max_size=12),
        "entity_id": st.text(max_size=8),
        "before": st.text(max_size=30),
        "after": st.text(max_size=30),
        "reason": st.none() | st.text(max_size=20),
    }
)


def build_chain(items: list[dict[str, Any]]) -> list[Entry]:
    """Chain entries the way the service writes them: seq 1..n, prev_hash, hash."""
    chain: list[Entry] = []
    prev = GENESIS_HASH
    for seq, content in enumerate(items, start=1):
        entry = {"seq": seq, **content}
        digest = entry_hash(prev, entry)
        chain.append({**entry, "prev_hash": prev, "hash": digest})
        prev = digest
    return chain


def head_before(chain: list[Entry], k: int) -> str:
    """The hash of entry k-1 (the genesis hash for k = 1)."""
    return chain[k - 2]["hash"] if k > 1 else GENESIS_HASH


def test_entry_hash_known_answer() -> None:
    # Pins the documented format, computed independently: SHA-256 over the previous hash, "\n",
    # and the sorted-key compact JSON (UTF-8, not ASCII-escaped) of the hashed fields.
    entry = {
        "seq": 1,
        "occurred_at": "2025-01-02T03:04:05.000006Z",
        "username": "jörg",
        "role": "sponsor_admin",
        "action": "cohort.open",
        "entity": "cohort",
        "entity_id": "C1",
        "before": '{"status":"planned"}',
        "after": '{"status":"open"}',
        "reason": None,
        "id": 99,  # not a hashed field: ignored
    }
    text = (
        '{"action":"cohort.open","after":"{\\"status\\":\\"open\\"}",'
        '"before":"{\\"status\\":\\"planned\\"}","entity":"cohort","entity_id":"C1",'
        '"occurred_at":"2025-01-02T03:04:05.000006Z","reason":null,"role":"sponsor_admin",'
        '"seq":1,"username":"jörg"}'
    )
    assert canonical(entry) == text
    expected = hashlib.sha256(f"{GENESIS_HASH}\n{text}".encode()).hexdigest()
    assert entry_hash(GENESIS_HASH, entry) == expected


@settings(max_examples=50, deadline=None)
@given(content=contents)
def test_canonical_is_sorted_compact_json_of_the_hashed_fields(content: dict[str, Any]) -> None:
    entry = {"seq": 7, **content, "prev_hash": "p", "hash": "h", "extra": object()}
    text = canonical(entry)
    assert json.loads(text) == {k: entry[k] for k in HASHED_FIELDS}
    assert list(json.loads(text)) == sorted(HASHED_FIELDS)
    again = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text == again


def test_empty_chain_is_ok() -> None:
    report = verify_chain([])
    assert (report.ok, report.entries, report.head_hash, report.first_bad_seq) == (
        True,
        0,
        GENESIS_HASH,
        None,
    )


@settings(max_examples=40, deadline=None)
@given(items=st.lists(contents, min_size=1, max_size=12))
def test_intact_chain_verifies(items: list[dict[str, Any]]) -> None:
    chain = build_chain(items)
    report = verify_chain(chain)
    assert report.ok is True
    assert report.entries == len(chain)
    assert report.head_hash == chain[-1]["hash"]
    assert report.first_bad_seq is None


@st.composite
def altered_chains(draw: st.DrawFn) -> tuple[list[Entry], int]:
    """A chain with one field of entry k changed to a different value; returns (chain, k)."""
    chain = build_chain(draw(st.lists(contents, min_size=1, max_size=10)))
    k = draw(st.integers(1, len(chain)))
    field = draw(st.sampled_from([*HASHED_FIELDS, "prev_hash", "hash"]))
    old = chain[k - 1][field]
    if field == "seq":
        new: object = draw(st.integers(-5, 50).filter(lambda v: v != old))
    else:
        new = draw(st.text(max_size=20).filter(lambda v: v != old))
    chain[k - 1] = {**chain[k - 1], field: new}
    return chain, k


@settings(max_examples=150, deadline=None)
@given(case=altered_chains())
def test_altering_any_field_of_entry_k_breaks_at_k(case: tuple[list[Entry], int]) -> None:
    chain, k = case
    report = verify_chain(chain)
    assert report.ok is False
    assert report.first_bad_seq == k
    assert report.entries == k - 1
    assert report.head_hash == head_before(chain, k)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(contents, min_size=2, max_size=10), data=st.data())
def test_deleting_entry_k_breaks_at_k(items: list[dict[str, Any]], data: st.DataObject) -> None:
    chain = build_chain(items)
    k = data.draw(st.integers(1, len(chain) - 1), label="k")
    del chain[k - 1]
    report = verify_chain(chain)
    assert report.ok is False
    assert report.first_bad_seq == k
    assert report.entries == k - 1


@settings(max_examples=30, deadline=None)
@given(items=st.lists(contents, min_size=1, max_size=10))
def test_truncating_the_tail_shows_only_in_the_head(items: list[dict[str, Any]]) -> None:
    # Deleting the last entries leaves a valid shorter chain: verify_chain alone cannot see it.
    # The caller must compare entries/head_hash with the stored chain head, which differ.
    chain = build_chain(items)
    report = verify_chain(chain[:-1])
    assert report.ok is True
    assert report.entries == len(chain) - 1
    assert report.head_hash != chain[-1]["hash"]


@settings(max_examples=60, deadline=None)
@given(items=st.lists(contents, min_size=2, max_size=10), data=st.data())
def test_swapping_two_entries_breaks_at_the_first(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    chain = build_chain(items)
    j = data.draw(st.integers(1, len(chain) - 1), label="j")
    k = data.draw(st.integers(j + 1, len(chain)), label="k")
    chain[j - 1], chain[k - 1] = chain[k - 1], chain[j - 1]
    report = verify_chain(chain)
    assert report.ok is False
    assert report.first_bad_seq == j


@settings(max_examples=60, deadline=None)
@given(items=st.lists(contents, min_size=2, max_size=10), data=st.data())
def test_swapping_two_entries_and_renumbering_breaks_at_the_first(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    chain = build_chain(items)
    j = data.draw(st.integers(1, len(chain) - 1), label="j")
    k = data.draw(st.integers(j + 1, len(chain)), label="k")
    a, b = chain[j - 1], chain[k - 1]
    chain[j - 1], chain[k - 1] = {**b, "seq": j}, {**a, "seq": k}
    report = verify_chain(chain)
    assert report.ok is False
    assert report.first_bad_seq == j


@settings(max_examples=30, deadline=None)
@given(items=st.lists(contents, min_size=1, max_size=8), data=st.data())
def test_rewriting_the_chain_from_k_changes_the_head(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Someone who alters entry k and recomputes every later hash gets a valid chain, but not the
    # same head hash: the stored head (or any published head) exposes the rewrite.
    chain = build_chain(items)
    k = data.draw(st.integers(1, len(chain)), label="k")
    forged = [dict(e) for e in items]
    forged[k - 1]["reason"] = (forged[k - 1]["reason"] or "") + " (edited)"
    rewritten = build_chain(forged)
    assert verify_chain(rewritten).ok is True
    assert verify_chain(rewritten).head_hash != verify_chain(chain).head_hash


@settings(max_examples=30, deadline=None)
@given(items=st.lists(contents, min_size=2, max_size=8), data=st.data())
def test_consistently_hashed_chain_with_a_seq_gap_breaks_at_the_gap(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Hashes and links all fit, but the numbering skips: sequence numbers must run 1..n.
    k = data.draw(st.integers(2, len(items)), label="k")
    chain: list[Entry] = []
    prev = GENESIS_HASH
    for position, content in enumerate(items, start=1):
        entry = {"seq": position if position < k else position + 1, **content}
        digest = entry_hash(prev, entry)
        chain.append({**entry, "prev_hash": prev, "hash": digest})
        prev = digest
    report = verify_chain(chain)
    assert report.ok is False
    assert report.first_bad_seq == k
