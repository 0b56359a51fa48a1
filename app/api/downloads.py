"""CSV downloads, for the API's routes and the pages alike: the response and its OpenAPI entry.

A neutral edge helper (no route here), so that a page never imports an API route module."""

from __future__ import annotations

from typing import Any

from fastapi import Response

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def csv_download(text: str, filename: str) -> Response:
    """A CSV file the browser saves under `filename` (the API's and the pages' downloads)."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
