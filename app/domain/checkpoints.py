"""Checkpoints of the audit chain's head: when one is due, what is signed, and which entry a set
of checkpoints contradicts. Signing and the file live in app/services/checkpoints.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STAGE_ACTIONS = frozenset({"cohort.open", "cohort.close", "phase2.select_dose", "site.activate"})
"""Audited actions that change what the study may do next: each one is checkpointed at once."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    why: str
    key_id: str
    signature: str
    """Base64 Ed25519 signature over `signed_payload`."""


def signed_payload(*, seq: int, hash: str, at: str, why: str, key_id: str) -> bytes:
    """The exact bytes signed: compact sorted JSON, so any reader can rebuild them."""
    body = {"seq": seq, "hash": hash, "at": at, "why": why, "key_id": key_id}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_reason(
    *, first_seq: int, last_seq: int, actions: Iterable[str], every: int
) -> str | None:
    """Why the transaction that appended entries first_seq..last_seq ends with a checkpoint:
    a stage change in it, or a multiple of `every` among its entries; None: not due."""
    changes = sorted(set(actions) & STAGE_ACTIONS)
    if changes:
        return "stage change: " + ", ".join(changes)
    if every > 0 and last_seq // every > (first_seq - 1) // every:
        return f"every {every} entries"
    return None


@dataclass(frozen=True)
class CheckpointReport:
    ok: bool
    checkpoints: int
    """Signed checkpoints checked against the chain."""
    last_good_seq: int | None
    """The last checkpointed entry that matches, before the first contradiction."""
    first_bad_seq: int | None
    """The first entry a checkpoint contradicts (for a chain cut short: the first missing one)."""
    detail: str


def check_chain(
    checkpoints: Sequence[Checkpoint], chain: Mapping[int, str], *, length: int
) -> CheckpointReport:
    """Compare the stored hashes (seq -> hash, `length` entries) with every checkpoint, in seq
    order. A rewritten entry changes every hash after it, so the first checkpoint at or after it
    disagrees; the tampering lies between `last_good_seq` and `first_bad_seq`."""
    last_good: int | None = None
    for point in sorted(checkpoints, key=lambda c: c.seq):
        if point.seq > length:
            return CheckpointReport(
                False,
                len(checkpoints),
                last_good,
                length + 1,
                f"the trail ends at entry {length}, but entry {point.seq} was checkpointed "
                f"at {point.at}: entries were removed",
            )
        if chain.get(point.seq) != point.hash:
            return CheckpointReport(
                False,
                len(checkpoints),
                last_good,
                point.seq,
                f"entry {point.seq} does not have the hash checkpointed at {point.at}: an entry "
                f"after {last_good or 0} and up to {point.seq} was changed, added or removed",
            )
        last_good = point.seq
    detail = (
        "1 checkpoint matches the trail"
        if len(checkpoints) == 1
        else f"{len(checkpoints)} checkpoints match the trail"
        if checkpoints
        else "no checkpoint written yet"
    )
    return CheckpointReport(True, len(checkpoints), last_good, None, detail)
