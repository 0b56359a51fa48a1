"""The raw-driver ceiling the service is measured against must itself work on both engines: a
ceiling that fails every request reads as an absurd ratio in the report, not as an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.ceiling import run_ceiling
from benchmarks.setup import drop_database, set_up
from tests.support.databases import ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_the_ceiling_randomizes_and_doses_with_threads_on_their_own_connections(
    engine: str, tmp_path: Path
) -> None:
    bench = set_up(engine, tmp_path, randomizations=16, sites=4)
    try:
        result = run_ceiling(bench, clients=4, randomizations=8)
    finally:
        drop_database(bench.url)
    assert set(result.phases) == {"randomize", "dispense"}
    for phase in result.phases.values():
        assert phase.errors == 0
        assert len(phase.latencies_ms) == 8
