"""A training server marks every answer: an `X-IRT-Environment: TRAINING` header, and every
download's file name starts with `TRAINING-` (exports, reports, lists), so that a file saved
from training can never pass for a production one (docs/deployment.md)."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from app.domain.environment import LABEL, Mode, mark_name

HEADER = "X-IRT-Environment"
_FILENAME = re.compile(r'filename="([^"]+)"')


def install(app: FastAPI) -> None:
    """Mark the answers of a training database's server; a production one is left as it is."""

    @app.middleware("http")
    async def mark(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers[HEADER] = LABEL
        disposition = response.headers.get("content-disposition")
        if disposition:
            response.headers["content-disposition"] = _FILENAME.sub(
                lambda m: f'filename="{mark_name(Mode.TRAINING, m.group(1))}"', disposition
            )
        return response
