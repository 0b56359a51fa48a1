"""The README's run command: `irt demo` sets up the demo study and serves it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import randomize_body
from tests.support.server import free_port

pytestmark = pytest.mark.slow


def test_irt_demo_serves_the_study(tmp_path: Path) -> None:
    port = free_port()
    irt = Path(sys.executable).parent / "irt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRT_")}
    env["IRT_PASSWORD_HASH_PROFILE"] = "fast"
    process = subprocess.Popen(
        [
            str(irt),
            "demo",
            "--database",
            str(tmp_path / "demo.db"),
            "--port",
            str(port),
            "--password",
            "demo-pass-0001",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "irt demo did not serve within 90 s"
            time.sleep(0.3)
        with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as api:
            token = api.post(
                "/auth/token", data={"username": "coordinator", "password": "demo-pass-0001"}
            )
            assert token.status_code == 200, token.text
            api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            subject = api.post(
                "/subjects",
                json={
                    "site_id": "DE01",
                    "screening_number": "X1",
                    "sex": "F",
                    "year_of_birth": 1990,
                },
            )
            assert subject.status_code == 201, subject.text
            result = api.post(
                f"/subjects/{subject.json()['subject_id']}/randomize",
                json=randomize_body(),
                headers={"Idempotency-Key": "demo-1"},
            )
            assert result.status_code == 201, result.text
            body = result.json()
            assert body["cohort"] == "C1" and len(body["kits"]) == 1 and "arm" not in body
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
