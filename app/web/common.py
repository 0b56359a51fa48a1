"""Allocating forms (randomize, dosing visit): how they retry the API's command once per the
form's one-time key. The other plumbing of the pages has its own modules (app/web/csrf.py,
forms.py, navigation.py, refusals.py, rendering.py, session.py)."""

from __future__ import annotations

from app.services import commands
from app.settings import Settings
from app.web.refusals import PageRefused

IN_FLIGHT_WAIT_SECONDS = 10.0


def form_retry(key: str | None, settings: Settings) -> commands.Retry:
    """How a form retries an allocating command: with the form's one-time key, so that a double
    submit does the work once and both answers get the same result; a second submit arriving
    while the first still runs waits for it."""
    if not key:
        raise PageRefused(
            400,
            "The form has expired",
            "The form has no one-time key, so nothing was changed. Open the form again.",
        )
    return commands.Retry(
        key=key,
        lease_seconds=settings.idempotency_lease_seconds,
        wait_seconds=IN_FLIGHT_WAIT_SECONDS,
    )
