"""The caps page (form, review, signature) and the versions page, without a browser; a
training database's banner on every page. Both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.db.engine import Database
from app.domain.environment import Mode
from app.domain.study import load_study
from app.main import create_app
from app.services.demo import set_up_demo
from app.settings import Settings
from tests.support.caps import randomize_many, stage
from tests.support.demo import DEMO_KITS, DEMO_LEVELS, DEMO_PASSWORD, DEMO_SEED
from tests.web.support import hidden, web_login


@pytest.fixture
def training(db: Database, db_url: str) -> Iterator[TestClient]:
    """A training demo with cohort C1 closed after 3 subjects."""
    set_up_demo(
        db,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=DEMO_KITS,
        site_levels=DEMO_LEVELS,
        in_transit_site=None,
        mode=Mode.TRAINING,
    )
    randomize_many(db, 3, prefix="C1")
    stage(db, ("C1", "close"))
    app = create_app(Settings(database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.db.dispose()


def test_caps_move_through_review_and_signature_in_training(training: TestClient) -> None:
    client = training
    assert "TRAINING" in client.get("/login").text
    csrf = web_login(client, "sponsor")
    form = client.get("/admin/caps")
    assert form.status_code == 200 and 'class="training-banner"' in form.text
    values = {
        "csrf_token": csrf,
        "idempotency_key": hidden(form.text, "idempotency_key"),
        "reason": "DSMB: C1 stopped after 3 subjects",
        "action": "move",
    }
    prefilled = client.post("/admin/caps/review", data=values)
    assert 'name="cap.P2" inputmode="numeric" size="5" value="199"' in prefilled.text
    values.pop("action")
    review = client.post("/admin/caps/review", data={**values, "cap.C1": "3", "cap.P2": "199"})
    assert review.status_code == 200 and "218</strong> of 218" in review.text
    assert "I approve these randomization caps: C1 3, P2 199" in review.text
    signed = {**values, "cap.C1": "3", "cap.P2": "199", "signature.password": "wrong-password!"}
    refused = client.post("/admin/caps", data=signed)
    assert refused.status_code == 422  # nothing changed; the form comes back
    signed["signature.password"] = DEMO_PASSWORD
    done = client.post("/admin/caps", data=signed, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/caps?done=1"
    shown = client.get("/admin/caps?done=1").text
    assert 'data-scope="C1"' in shown and 'value="199"' in shown
    versions = client.get("/admin/study-versions")
    assert versions.status_code == 200 and "first version" in versions.text


def test_outbox_and_exports_of_a_training_database_say_so(training: TestClient) -> None:
    client = training
    token = client.post(
        "/api/v1/auth/token", data={"username": "monitor", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    messages = client.get("/api/v1/admin/outbox", headers=headers).json()
    assert messages and all(m["subject"].startswith("[TRAINING] ") for m in messages)
    assert all(m["body"]["environment"] == "TRAINING" for m in messages)
    exported = client.get("/api/v1/admin/exports/list.csv", headers=headers)
    assert exported.text.startswith("# irt-mode: training\n")
    assert 'filename="TRAINING-list-canonical.csv"' in exported.headers["content-disposition"]
    assert exported.headers["X-IRT-Environment"] == "TRAINING"
