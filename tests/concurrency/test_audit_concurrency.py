"""200 concurrent audited writes from two server processes make one unbroken hash chain."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from app.db.engine import Database
from app.services import audit
from tests.support.helpers import login
from tests.support.server import running_server

pytestmark = pytest.mark.slow
WRITES = 200


async def _register_all(base: str, headers: dict[str, str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=base, timeout=120, limits=httpx.Limits(max_connections=64)
    ) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/api/v1/subjects",
                    headers=headers,
                    json={
                        "site_id": ("DE01", "DE02")[i % 2],
                        "screening_number": uuid.uuid4().hex[:12],
                        "sex": "F",
                        "year_of_birth": 1980,
                    },
                )
                for i in range(WRITES)
            )
        )


def test_200_concurrent_audited_writes_form_one_chain(demo_db: Database, db_url: str) -> None:
    with demo_db.read() as session:
        before = audit.verify(session)
    assert before.ok
    with running_server(db_url, workers=2) as (base, _), httpx.Client(base_url=base) as client:
        responses = asyncio.run(_register_all(base, login(client, "coordinator")))
    assert Counter(r.status_code for r in responses) == {201: WRITES}
    with demo_db.read() as session:
        after = audit.verify(session)
        entries = audit.entries_after(session, after_seq=before.entries)
    assert after.ok, after
    assert after.entries == before.entries + WRITES
    assert [e["seq"] for e in entries] == list(range(before.entries + 1, after.entries + 1))
    registered = {str(r.json()["subject_id"]) for r in responses}
    assert {e["entity_id"] for e in entries if e["action"] == "subject.register"} == registered
