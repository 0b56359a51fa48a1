"""The session's own routes: the time left and "Stay logged in" (for static/session.js, the
warning before the session ends), and the page of a form kept after the session ended."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.api.deps import SettingsDep
from app.services.actor import Actor
from app.web import kept_forms
from app.web.cookies import queue_deletion
from app.web.rendering import render, see_other
from app.web.session import Renewal, now, safe_next, seconds_left, session_actor

router = APIRouter()

Looking = Annotated[Actor, Depends(session_actor(Renewal.NEVER))]
Extending = Annotated[Actor, Depends(session_actor(Renewal.ALWAYS))]
AnyUser = Annotated[Actor, Depends(session_actor(Renewal.WHEN_DUE))]


def _time_left(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "expires_in": seconds_left(request),
            "extendable": bool(getattr(request.state, "session_extendable", False)),
        }
    )


@router.get("/session/status")
def session_status(request: Request, actor: Looking) -> Response:
    """Seconds left (the warning checks before it shows: another tab may have renewed)."""
    return _time_left(request)


@router.post("/session/extend")
def extend_session(request: Request, actor: Extending) -> Response:
    """ "Stay logged in": a fresh idle period (never past the session's maximum)."""
    return _time_left(request)


@router.get(kept_forms.KEPT_PATH, response_class=HTMLResponse)
def kept_form(request: Request, actor: AnyUser, settings: SettingsDep) -> Response:
    """The form this user sent after the session ended, with "Submit now"; only theirs."""
    kept = kept_forms.kept_for(request, username=actor.username, settings=settings, now=now())
    action = safe_next(kept.action) if kept else "/"
    return render(request, "session/kept.html", title="Your unsent form", kept=kept, action=action)


@router.post(f"{kept_forms.KEPT_PATH}/discard")
def discard_kept_form(request: Request, actor: AnyUser) -> Response:
    queue_deletion(request, kept_forms.KEPT_COOKIE)
    return see_other("/")
