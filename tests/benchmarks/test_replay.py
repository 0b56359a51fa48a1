"""The replay (benchmarks/replay.py) stands for the service's statements through the raw driver
only if it sends all of them, as they were: on both engines a replay must leave its copy as the
service left the original, and a recording with one statement missing must be refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import replay
from benchmarks.ceiling import register_subjects
from benchmarks.setup import drop_database, set_up
from tests.support.databases import ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_the_replay_leaves_the_copy_as_the_service_left_the_original(
    engine: str, tmp_path: Path
) -> None:
    bench = set_up(engine, tmp_path, randomizations=16, sites=4)
    copies: list[str] = []
    try:
        script = replay.Script.make(register_subjects(bench.url, bench, 4, "T"))
        copies = [replay.clone(bench.url, tag) for tag in ("whole", "cut")]
        before = replay.fingerprint(copies[0])
        recording = replay.capture(bench, script)
        costs = replay.replay(copies[0], recording)

        assert replay.fingerprint(copies[0]) == recording.fingerprint != before
        for kind in replay.KINDS:
            cost = costs[kind]
            assert cost.statements > 10 and cost.transactions >= 3
            assert {"token", "claim", "request", "check"} <= set(cost.parts)
            assert cost.client_ms > 0

        # the dispensing of one subject's week 4 kits, left out
        low, high = recording.spans["dispense"]
        dropped = next(
            n
            for n in range(low, high)
            if isinstance(e := recording.events[n], replay.Statement)
            and e.sql.startswith("INSERT INTO dispensed_kits")
        )
        cut = replace(
            recording, events=recording.events[:dropped] + recording.events[dropped + 1 :]
        )
        with pytest.raises(RuntimeError, match="unfaithful replay"):
            replay.replay(copies[1], cut)
    finally:
        for url in [bench.url, *copies]:
            drop_database(url)
