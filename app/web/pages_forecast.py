"""The live forecast page and its CSV: need per site and depot over the next N weeks. The same
service and roles as /api/v1/supply/forecast (app/api/forecast.py): totals over contents for
every blinded role, per content for the unblinded monitor only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import DB, StudyDep
from app.api.downloads import csv_download
from app.domain.errors import DomainError
from app.domain.roles import FORECAST_READERS
from app.services import forecast
from app.services.actor import Actor
from app.web.forms import FormErrors, errors_from_service
from app.web.rendering import render
from app.web.session import page_actor

router = APIRouter()

Readers = Annotated[Actor, Depends(page_actor(*FORECAST_READERS))]
WeeksText = Annotated[str | None, Query(max_length=6)]

SITE_ROWS = (
    ("stock", "Stock (matched, dispensable when a shipment ordered today arrives)"),
    ("in_transit", "In transit"),
    ("need_lead", "Need within the lead time"),
    ("need_horizon", "Need within the horizon"),
    ("balance", "Projected balance (stock + in transit - need within the horizon)"),
    ("order_quantity", "Kits the policy would order now"),
)
DEPOT_ROWS = (
    ("shippable", "Shippable today"),
    ("shortfall", "Its sites' projected shortfall"),
    ("balance", "Balance (shippable - shortfall)"),
)
WEEKS_MESSAGE = f"Enter a whole number of weeks from {forecast.MIN_WEEKS} to {forecast.MAX_WEEKS}."


@router.get("/supply/forecast", response_class=HTMLResponse)
def forecast_page(
    request: Request, actor: Readers, db: DB, study: StudyDep, weeks: WeeksText = None
) -> Response:
    """A GET form for the horizon and a table per site (and per depot)."""
    text = (weeks or "").strip() or str(forecast.DEFAULT_WEEKS)
    errors = FormErrors()
    result: forecast.Forecast | forecast.BlindedForecast | None = None
    if not text.isascii() or not text.isdigit():
        errors.add("weeks", WEEKS_MESSAGE)
    else:
        try:
            result = forecast.read_forecast(db=db, study=study, actor=actor, weeks=int(text))
        except DomainError as exc:
            if exc.code != "validation_error":
                raise
            errors = errors_from_service(exc)
    return render(
        request,
        "supply/forecast.html",
        status_code=422 if errors else 200,
        title="Supply forecast",
        weeks=text,
        errors=errors,
        result=result,
        unblinded=isinstance(result, forecast.Forecast),
        site_rows=SITE_ROWS,
        depot_rows=DEPOT_ROWS,
        min_weeks=forecast.MIN_WEEKS,
        max_weeks=forecast.MAX_WEEKS,
    )


@router.get("/supply/forecast.csv")
def forecast_csv(
    actor: Readers, db: DB, study: StudyDep, weeks: int = forecast.DEFAULT_WEEKS
) -> Response:
    result = forecast.read_forecast(db=db, study=study, actor=actor, weeks=weeks)
    return csv_download(forecast.forecast_csv(result), "forecast.csv")
