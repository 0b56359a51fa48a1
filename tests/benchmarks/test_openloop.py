"""The open-loop benchmark's own rules (benchmarks/openloop.py): Poisson arrivals at the asked
rate, failures counted per cause, the run stopped only after two rates in a row over the bound,
and the reported rate one with no failure."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx
import pytest

from benchmarks import openloop
from benchmarks.setup import BenchDatabase


def _step(rate: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {"rate_per_s": rate, "p99_ms": p99, "errors": errors}


def test_arrivals_come_at_the_asked_rate_in_order_within_the_step() -> None:
    rng = random.Random(7)
    counts = []
    for _ in range(200):
        times = openloop._arrivals(20.0, 10.0, rng)
        assert times == sorted(times) and all(0 < t < 10.0 for t in times)
        counts.append(len(times))
    mean = sum(counts) / len(counts)
    # Poisson: mean 200, standard deviation of the mean about 1
    assert 195 < mean < 205


def test_failures_are_counted_per_cause_and_named_by_problem_code() -> None:
    refused = httpx.Response(
        409, json={"code": "stage_full", "title": "Stage full"}, request=httpx.Request("GET", "/")
    )
    html = httpx.Response(502, text="<html>", headers={"content-type": "text/html"})
    assert openloop._problem_code(refused) == "stage_full"
    assert openloop._problem_code(html) == "text/html"
    summary = openloop._summary(
        10.0, [5.0, 1.0, 3.0], Counter({"409 stage_full": 2, "ReadTimeout": 1}), planned=6
    )
    assert summary["errors"] == 3 and summary["answered"] == 3 and summary["planned"] == 6
    assert summary["error_kinds"] == {"409 stage_full": 2, "ReadTimeout": 1}


def test_the_highest_rate_reported_is_under_the_bound_and_without_failures() -> None:
    bound = openloop.BOUND_MS
    steps = [_step(1, 20), _step(5, 30), _step(10, 40, errors=3), _step(20, bound + 1)]
    assert openloop.highest_under_bound(steps) == 5
    assert openloop.highest_under_bound([_step(1, bound)]) is None


def test_one_slow_rate_does_not_end_the_run_two_in_a_row_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound = openloop.BOUND_MS
    p99 = {1.0: 20, 2.0: bound + 30, 3.0: 40, 5.0: bound + 1, 10.0: bound + 50, 20.0: 10}
    tried: list[float] = []

    async def fake_login(base: str, bench: BenchDatabase) -> dict[str, dict[str, str]]:
        return {}

    async def fake_step(
        base: str, bench: BenchDatabase, rate: float, seconds: float, pool: dict[str, Any]
    ) -> dict[str, Any]:
        tried.append(rate)
        return _step(rate, p99.get(rate, 0.0))

    monkeypatch.setattr(openloop, "_login_all", fake_login)
    monkeypatch.setattr(openloop, "_service_step", fake_step)
    bench = BenchDatabase("postgresql", "postgresql://unused", None, ())  # type: ignore[arg-type]
    steps = openloop.service("http://unused", bench, list(p99), 1.0)
    assert tried == [openloop.WARM_UP_RATE, 1.0, 2.0, 3.0, 5.0, 10.0]  # 20 /s never tried
    assert [s["rate_per_s"] for s in steps] == [1.0, 2.0, 3.0, 5.0, 10.0]
    assert openloop.highest_under_bound(steps) == 3.0
