"""Hash chain of the audit trail: canonical content, entry hash, chain verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "username",
    "role",
    "action",
    "entity",
    "entity_id",
    "before",
    "after",
    "reason",
)


def canonical(entry: Mapping[str, Any]) -> str:
    """Sorted-key compact JSON of the hashed fields (UTF-8, no whitespace)."""
    return json.dumps(
        {k: entry[k] for k in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """SHA-256 over the previous entry's hash, a newline and this entry's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(entry)}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Recompute every hash in sequence order; name the first entry that does not fit.

    `first_bad_seq` is the sequence number the chain expected at the break (the position), not
    the `seq` stored in the bad entry, which may itself be tampered with or belong elsewhere."""
    prev = GENESIS_HASH
    count = 0
    for count, entry in enumerate(entries, start=1):
        if (
            entry["seq"] != count
            or entry["prev_hash"] != prev
            or entry_hash(prev, entry) != entry["hash"]
        ):
            return ChainReport(False, count - 1, prev, count)
        prev = entry["hash"]
    return ChainReport(True, count, prev, None)
