"""The live forecast as JSON and CSV: need per site and depot over the next N weeks.

Roles: supply managers and sponsor admins (every active site, and the depots), pharmacists
(their own sites), all blinded: totals over contents. The unblinded monitor gets the figures per
content. Which variant a caller gets is decided by the service (app/services/forecast.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from app.api.deps import DB, StudyDep, require
from app.api.downloads import CSV_RESPONSE, csv_download
from app.api.forecast_schemas import BlindedForecastOut, ForecastOut, forecast_out
from app.domain.roles import FORECAST_READERS
from app.services import forecast
from app.services.actor import Actor

router = APIRouter(prefix="/supply", tags=["supply"])

Readers = Annotated[Actor, Depends(require(*FORECAST_READERS))]
Weeks = Annotated[
    int,
    Query(
        description=(
            f"The horizon in weeks, {forecast.MIN_WEEKS} to {forecast.MAX_WEEKS} "
            f"(default {forecast.DEFAULT_WEEKS})."
        )
    ),
]
SiteFilter = Annotated[str | None, Query(max_length=12, description="One of your active sites.")]


@router.get("/forecast", response_model=ForecastOut | BlindedForecastOut)
def supply_forecast(
    actor: Readers,
    db: DB,
    study: StudyDep,
    weeks: Weeks = forecast.DEFAULT_WEEKS,
    site_id: SiteFilter = None,
) -> Any:
    """Per active site: stock, kits in transit, need within the lead time and within N weeks,
    projected balance, whether a shipment is due and what the policy would order; per depot:
    kits shippable today against its sites' shortfall. Per content only for the unblinded
    monitor; totals over contents for every other role."""
    return forecast_out(
        forecast.read_forecast(db=db, study=study, actor=actor, weeks=weeks, site_id=site_id)
    )


@router.get("/forecast.csv", response_class=Response, responses=CSV_RESPONSE)
def supply_forecast_csv(
    actor: Readers,
    db: DB,
    study: StudyDep,
    weeks: Weeks = forecast.DEFAULT_WEEKS,
    site_id: SiteFilter = None,
) -> Response:
    """One row per site and depot (per content only for the unblinded monitor)."""
    result = forecast.read_forecast(db=db, study=study, actor=actor, weeks=weeks, site_id=site_id)
    return csv_download(forecast.forecast_csv(result), "forecast.csv")
