"""POST /auth/token and GET /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import DB, SettingsDep, current_actor
from app.api.schemas import Me, Token
from app.services.actor import Actor
from app.services.auth import issue_token, login

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=Token)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], db: DB, settings: SettingsDep
) -> Token:
    user = login(db, settings=settings, username=form.username, password=form.password)
    return Token(
        access_token=issue_token(
            user=user, secret=settings.secret_key, ttl_seconds=settings.token_ttl_seconds
        ),
        expires_in=settings.token_ttl_seconds,
    )


@router.get("/me", response_model=Me)
def me(actor: Annotated[Actor, Depends(current_actor)]) -> Me:
    return Me(username=actor.username, role=actor.role, site_ids=sorted(actor.site_ids))
