"""When a checkpoint is due, and which entry a set of checkpoints contradicts (no database)."""

from __future__ import annotations

from app.domain.checkpoints import Checkpoint, check_chain, checkpoint_reason


def _point(seq: int, digest: str) -> Checkpoint:
    return Checkpoint(seq, digest, "2026-01-01T00:00:00Z", "test", "k", "s")


def test_due_at_a_stage_change_or_when_a_multiple_of_n_is_passed() -> None:
    assert checkpoint_reason(first_seq=3, last_seq=4, actions=["subject.register"], every=5) is None
    assert checkpoint_reason(first_seq=4, last_seq=6, actions=["kit.x"], every=5) == (
        "every 5 entries"
    )
    assert checkpoint_reason(first_seq=1, last_seq=1, actions=["site.activate"], every=100) == (
        "stage change: site.activate"
    )


def test_the_first_contradicted_entry_and_the_last_good_one_are_named() -> None:
    chain = {seq: f"h{seq}" for seq in range(1, 11)}
    points = [_point(3, "h3"), _point(6, "h6"), _point(9, "h9")]
    assert check_chain(points, chain, length=10).ok
    rewritten = {**chain, 6: "x6", 9: "x9"}
    report = check_chain(points, rewritten, length=10)
    assert (report.ok, report.last_good_seq, report.first_bad_seq) == (False, 3, 6)
    cut = {seq: h for seq, h in chain.items() if seq <= 7}
    report = check_chain(points, cut, length=7)
    assert (report.ok, report.last_good_seq, report.first_bad_seq) == (False, 6, 8)
