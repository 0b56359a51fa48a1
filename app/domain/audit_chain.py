"""Hash chain of the audit trail: canonical content, entry hash, chain verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
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

ROW_FIELDS = (*sorted(HASHED_FIELDS), "prev_hash", "hash")
"""Column order of the rows `verify_rows` takes: the hashed fields in canonical (sorted) order,
then the stored hashes."""


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
    the `seq` stored in the bad entry, which may itself be tampered with or belong elsewhere.
    An entry missing a field (a damaged export file) is a break there, not an error."""
    return verify_rows([(tuple(entry.get(k) for k in ROW_FIELDS) for entry in entries)])


def verify_rows(
    chunks: Iterable[Iterable[Sequence[Any]]],
    *,
    progress: Callable[[int], None] | None = None,
    start_after: tuple[int, str] = (0, GENESIS_HASH),
) -> ChainReport:
    """`verify_chain` over rows in `ROW_FIELDS` order, fed in chunks; `progress` is told how
    many entries each chunk held once it verified them. `start_after`: the sequence number and the
    stored hash of the entry before the first row (a part of the chain verified on its own:
    the part before it vouches for that hash).

    The hashed text is built inline, byte for byte what `canonical` gives (the tests hold it to
    that): the sorted keys spelled out, every string through the C escaper json.dumps itself
    uses with ensure_ascii=False, null only for `reason`, `seq` an int. Any other value takes
    `canonical` itself. Why: its dict, key sort and new JSONEncoder an entry cost ten times
    the SHA-256, and this loop is most of what verification costs."""
    enc, sha = encode_basestring, hashlib.sha256
    count, prev = start_after
    for chunk in chunks:
        done = count
        for row in chunk:
            (
                action,
                after,
                before,
                entity,
                entity_id,
                at,
                reason,
                role,
                seq,
                user,
                linked,
                digest,
            ) = row
            count += 1
            if seq != count or linked != prev:
                return ChainReport(False, count - 1, prev, count)
            try:
                if type(seq) is not int:  # True or 1.0 equal 1, but json spells them otherwise
                    raise TypeError(seq)
                text = (
                    f'{prev}\n{{"action":{enc(action)},"after":{enc(after)},'
                    f'"before":{enc(before)},"entity":{enc(entity)},'
                    f'"entity_id":{enc(entity_id)},"occurred_at":{enc(at)},'
                    f'"reason":{"null" if reason is None else enc(reason)},"role":{enc(role)},'
                    f'"seq":{seq},"username":{enc(user)}}}'
                )
            except TypeError:  # a value that is not a str (the escaper refuses it)
                text = f"{prev}\n{canonical(dict(zip(ROW_FIELDS, row, strict=False)))}"
            if sha(text.encode()).hexdigest() != digest:
                return ChainReport(False, count - 1, prev, count)
            prev = digest
        if progress is not None:
            progress(count - done)
    return ChainReport(True, count, prev, None)
