"""Accounts, tokens, throttling, transport hardening, the outbox and the audit export."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as cli
from app.db.engine import Database
from app.services import accounts, outbox
from app.services.actor import SYSTEM
from app.services.transaction import writing
from app.settings import Settings
from tests.support.api import assert_problem
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot
from tests.support.demo import DEMO_PASSWORD
from tests.support.helpers import SIGNED, login, randomize, register


def _token(client: TestClient, username: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_unknown_user_and_wrong_password_get_the_same_answer(client: TestClient) -> None:
    unknown = assert_problem(_token(client, "nobody", "whatever-pw"), 401, "unauthorized")
    wrong = assert_problem(_token(client, "coordinator", "whatever-pw"), 401, "unauthorized")
    assert unknown["detail"] == wrong["detail"]


def test_disabling_or_resetting_a_user_ends_their_tokens_at_once(
    client: TestClient, demo_db: Database
) -> None:
    coordinator, pharmacist = login(client, "coordinator"), login(client, "pharmacist")
    assert client.get("/api/v1/me", headers=coordinator).status_code == 200
    with writing(demo_db) as session:
        accounts.disable(session, actor=SYSTEM, username="coordinator", reason="left the site")
        accounts.reset_password(
            session,
            actor=SYSTEM,
            username="pharmacist",
            password="new-password-123",
            reason="forgotten password",
        )
    assert_problem(client.get("/api/v1/me", headers=coordinator), 401, "unauthorized")
    assert_problem(client.get("/api/v1/me", headers=pharmacist), 401, "unauthorized")
    assert_problem(_token(client, "coordinator"), 401, "unauthorized")
    assert _token(client, "pharmacist", "new-password-123").status_code == 200


def test_security_headers_and_closed_cors(client: TestClient) -> None:
    response = client.get(
        "/api/v1/me", headers={**login(client, "coordinator"), "Origin": "https://evil.example"}
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_an_oversized_body_is_refused_before_anything_runs(
    client: TestClient, demo_db: Database
) -> None:
    headers = login(client, "coordinator")
    before = snapshot(demo_db)
    big = "x" * (Settings().max_request_bytes + 1)
    response = client.post(
        "/api/v1/subjects", content=big, headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "request_too_large")
    assert_unchanged(demo_db, before)


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail: ClassVar[bool] = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).fail:
            self.send_response(503)
        else:
            type(self).received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received, _Hook.fail = [], False
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_outbox_drain_delivers_and_keeps_failures_for_a_retry(
    client: TestClient, demo_db: Database, webhook: str
) -> None:
    headers = login(client, "coordinator")
    subject = register(client, headers)
    assert randomize(client, headers, subject).status_code == 201
    reason = {"reason_category": "overdose", "reason": "Twice the dose given by mistake", **SIGNED}
    unblinded = client.post(
        f"/api/v1/subjects/{subject}/unblind", json=reason, headers=login(client, "investigator")
    )
    assert unblinded.status_code == 200
    send = outbox.sender_for(Settings(outbox_webhook_url=webhook))

    monitor = login(client, "monitor")
    # the unblinding notice, and the confirmations of the randomization and the unblinding
    queued = len(client.get("/api/v1/admin/outbox", headers=monitor).json())
    assert queued == 4

    _Hook.fail = True
    assert outbox.drain(demo_db, send=send) == (0, queued)
    for waiting in client.get("/api/v1/admin/outbox", headers=monitor).json():
        assert waiting["sent_at"] is None and waiting["attempts"] == 1 and waiting["last_error"]

    _Hook.fail = False
    assert outbox.drain(demo_db, send=send) == (queued, 0)
    assert outbox.drain(demo_db, send=send) == (0, 0)
    assert len(_Hook.received) == queued
    [delivered] = [m for m in _Hook.received if m["kind"] == "emergency_unblinding"]
    assert delivered["body"]["subject_id"] == subject
    assert unblinded.json()["treatment"] not in json.dumps(_Hook.received)
    for sent in client.get("/api/v1/admin/outbox", headers=monitor).json():
        assert sent["sent_at"] is not None and sent["attempts"] == 2


def test_audit_export_verifies_offline_and_names_a_tampered_line(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    headers = login(client, "coordinator")
    register(client, headers)
    runner = CliRunner()
    out = tmp_path / "audit.jsonl"
    exported = runner.invoke(
        cli, as_demo_user(["audit", "export", "--out", str(out), "--database-url", db_url])
    )
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(cli, ["audit", "verify", "--file", str(out)])
    assert verified.exit_code == 0 and verified.output.startswith("ok:"), verified.output
    online = runner.invoke(cli, as_demo_user(["audit", "verify", "--database-url", db_url]))
    assert online.exit_code == 0 and online.output.split()[1] == verified.output.split()[1]
    lines = out.read_text().splitlines()
    entry = json.loads(lines[6])
    entry["reason"] = "history rewritten"
    lines[6] = json.dumps(entry)
    out.write_text("\n".join(lines) + "\n")
    broken = runner.invoke(cli, ["audit", "verify", "--file", str(out)])
    assert broken.exit_code == 1 and "BROKEN at entry 7" in broken.output


def test_a_damaged_export_is_named_not_a_traceback(tmp_path: Path) -> None:
    """A line that is not JSON, or not an entry, is named with its number; a line missing a
    field is a break at that entry."""
    runner = CliRunner()
    out = tmp_path / "audit.jsonl"
    out.write_text('not json\n{"seq": 1}\n')
    garbled = runner.invoke(cli, ["audit", "verify", "--file", str(out)])
    assert garbled.exit_code == 1 and "line 1 is not JSON" in garbled.output, garbled.output
    out.write_text("[1, 2]\n")
    listed = runner.invoke(cli, ["audit", "verify", "--file", str(out)])
    assert listed.exit_code == 1 and "line 1 is not an audit entry" in listed.output
    out.write_text('{"seq": 1}\n')
    short = runner.invoke(cli, ["audit", "verify", "--file", str(out)])
    assert short.exit_code == 1 and "BROKEN at entry 1" in short.output, short.output
