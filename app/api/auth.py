"""POST /auth/token, POST /auth/logout and GET /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import DB, SettingsDep, client_source, current_actor, oauth2
from app.api.schemas import Me, Token
from app.services import device_proof
from app.services.actor import Actor
from app.services.auth import issue_token, login, logout

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=Token)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DB,
    settings: SettingsDep,
    device_token: Annotated[str | None, Form(max_length=2000)] = None,
) -> Token:
    """Log in. Repeated failures are delayed (429 with Retry-After), per source and user name,
    per source and per user name; a login carrying this user's `device_token` from an earlier
    login is counted per device only, so it is never held up by other people's attempts."""
    known = device_proof.device_id(
        proof=device_token, username=form.username, secret=settings.secret_key
    )
    user = login(
        db,
        settings=settings,
        username=form.username,
        password=form.password,
        source=client_source(request),
        device_id=known,
    )
    return Token(
        access_token=issue_token(
            user=user, secret=settings.secret_key, ttl_seconds=settings.token_ttl_seconds
        ),
        expires_in=settings.token_ttl_seconds,
        device_token=device_proof.issue(
            username=user.username, secret=settings.secret_key, days=settings.device_proof_days
        ),
    )


@router.post("/auth/logout", status_code=204, response_class=Response)
def end_session(
    actor: Annotated[Actor, Depends(current_actor)],
    token: Annotated[str | None, Depends(oauth2)],
    db: DB,
    settings: SettingsDep,
) -> Response:
    """End this token's session on the server: the token is refused from now on."""
    logout(
        db, token=token or "", secret=settings.secret_key, ttl_seconds=settings.token_ttl_seconds
    )
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(actor: Annotated[Actor, Depends(current_actor)]) -> Me:
    return Me(username=actor.username, role=actor.role, site_ids=sorted(actor.site_ids))
