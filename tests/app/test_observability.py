"""What operators see: /metrics (behind its token), one JSON log line per request with an id that
the audit entries of the request carry too, /health and /ready. A blinded journey leaves no arm,
content or lot in the metrics or the logs."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Kit
from app.domain.study import load_study
from app.main import create_app
from app.observability import metrics
from app.observability.logs import LOGGERS, formatter
from app.services import audit
from app.settings import Settings
from tests.support.helpers import login, today
from tests.support.supply import dispense, randomize_on

TOKEN = "metrics-token-for-the-tests"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def observed(demo_db: Database, db_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url, metrics_token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.db.dispose()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The app's log lines, rendered as in production (one JSON object per line)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    # Another test in the same process may have disabled or raised these loggers (a logging
    # config applied with disable_existing_loggers): they are opened for this test, then restored.
    names = [*LOGGERS, "irt.request"]
    kept = {n: (logging.getLogger(n).disabled, logging.getLogger(n).level) for n in names}
    for name in names:
        logging.getLogger(name).disabled = False
        logging.getLogger(name).setLevel(logging.INFO)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield stream
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    for name, (disabled, level) in kept.items():
        logging.getLogger(name).disabled = disabled
        logging.getLogger(name).setLevel(level)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def forbidden_words(db: Database) -> tuple[set[str], set[str]]:
    """(arm codes and names, matched in any case; lot numbers, matched as whole words)."""
    study = load_study()
    arms = {a.code for a in study.arms} | {a.name for a in study.arms} - {study.code}
    with db.read() as session:
        lots = set(session.execute(select(Kit.lot).distinct()).scalars())
    return {a.lower() for a in arms}, lots


def leaks(text: str, arms: set[str], lots: set[str]) -> list[str]:
    lowered = text.lower()
    found = [arm for arm in arms if arm in lowered]
    found += [lot for lot in lots if re.search(rf"\b{re.escape(lot)}\b", text)]
    return found


def test_a_blinded_journey_leaves_no_arm_content_or_lot_in_metrics_or_logs(
    observed: TestClient, demo_db: Database, log_lines: io.StringIO
) -> None:
    client = observed
    before = client.get("/metrics", headers=SCRAPE).text
    coordinator, pharmacist = login(client, "coordinator"), login(client, "pharmacist")
    subject_id, _ = randomize_on(client, coordinator, "DE01", today() - timedelta(days=28))
    assert dispense(client, pharmacist, subject_id, "W4", today()).status_code == 201
    again = dispense(client, pharmacist, subject_id, "W4", today())
    assert again.status_code == 409
    refused_code = again.json()["code"]

    scraped = client.get("/metrics", headers=SCRAPE)
    assert scraped.status_code == 200
    metrics = scraped.text
    assert (
        sample(metrics, "irt_randomizations_total")
        == sample(before, "irt_randomizations_total") + 1
    )
    assert sample(metrics, "irt_dispensings_total") > sample(before, "irt_dispensings_total")
    assert (
        sample(metrics, "irt_refusals_total", code=refused_code)
        == sample(before, "irt_refusals_total", code=refused_code) + 1
    )
    route = "/api/v1/subjects/{subject_id}/dispense"
    assert sample(metrics, "irt_request_duration_seconds_count", route=route, status="201") >= 1
    assert f'route="/api/v1/subjects/{subject_id}' not in metrics  # templates, not raw paths
    assert 'irt_site_stock_below_trigger{site="DE01"}' in metrics

    logs = log_lines.getvalue()
    requests = [json.loads(line) for line in logs.splitlines() if '"event": "request"' in line]
    assert any(r["route"] == route and r["status"] == 201 for r in requests), requests
    arms, lots = forbidden_words(demo_db)
    assert arms and lots
    assert leaks(metrics, arms, lots) == []
    assert leaks(logs, arms, lots) == []


def test_the_request_id_is_echoed_logged_and_kept_in_its_audit_entries(
    observed: TestClient, demo_db: Database, log_lines: io.StringIO
) -> None:
    client = observed
    coordinator = login(client, "coordinator")
    with demo_db.read() as session:
        last = len(audit.entries_after(session, after_seq=0))
    sent = {**coordinator, "X-Request-ID": "trace-4711.a:b"}
    response = client.post(
        "/api/v1/subjects",
        json={"site_id": "DE01", "screening_number": "RID-1", "sex": "F", "year_of_birth": 1980},
        headers={**sent, "Idempotency-Key": "rid-1"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "trace-4711.a:b"
    with demo_db.read() as session:
        entries = audit.entries_after(session, after_seq=last, action="subject.register")
    assert [json.loads(e["after"])["request_id"] for e in entries] == ["trace-4711.a:b"]
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert any(
        line.get("request_id") == "trace-4711.a:b" and line.get("route") == "/api/v1/subjects"
        for line in lines
    ), lines

    forged = client.get("/health", headers={"X-Request-ID": 'x" injected\n{"level":"error"}'})
    generated = forged.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated), generated
    assert client.get("/health").headers["x-request-id"] != generated


def test_metrics_are_served_only_with_their_token(observed: TestClient, client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}):
        refused = observed.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
    monitor = login(observed, "monitor")  # a user's token is no metrics token
    assert observed.get("/metrics", headers=monitor).status_code == 401
    assert client.get("/metrics", headers=SCRAPE).status_code == 404  # no token set: not served


def test_health_and_ready_need_no_token(observed: TestClient) -> None:
    health = observed.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = observed.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["study"] == "IMC-002"
    assert ready.json()["revision"]


def test_the_counts_of_several_server_processes_are_summed(
    demo_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus_client's multiprocess mode: each process writes its counts to the directory,
    any process's scrape adds them up (`irt serve --workers N` sets the directory)."""
    shared = tmp_path / "metrics"  # its own directory: every *.db file in it is read
    shared.mkdir()
    count = "from app.observability import metrics; metrics.RANDOMIZATIONS.inc()"
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", count],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)},
            check=True,
            timeout=120,
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    text = metrics.exposition(demo_db, load_study()).decode()
    assert sample(text, "irt_randomizations_total") == 2
    assert 'irt_site_stock_below_trigger{site="DE01"}' in text
