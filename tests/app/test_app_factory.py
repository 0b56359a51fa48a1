"""The app factory's own settings, on both engines."""

from __future__ import annotations

from anyio import to_thread
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.main import create_app
from app.settings import Settings


def test_a_server_process_works_on_at_most_worker_threads_requests(
    demo_db: Database, db_url: str
) -> None:
    app = create_app(Settings(database_url=db_url, worker_threads=3))

    async def tokens() -> float:
        return to_thread.current_default_thread_limiter().total_tokens

    with TestClient(app) as client:
        assert client.portal is not None
        assert client.portal.call(tokens) == 3
        assert client.get("/health").status_code == 200
    app.state.db.dispose()
