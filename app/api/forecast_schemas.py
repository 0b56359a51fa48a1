"""Response bodies of the live forecast (app/services/forecast.py). The blinded and the
unblinded forecast are separate models, each built from its own service result: the blinded one
has no field that could carry a content."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from app.services.forecast import BlindedForecast, DepotTotals, Forecast, SiteTotals


class _FromResult(BaseModel):
    """Read from the service's frozen dataclasses, attribute by attribute."""

    model_config = ConfigDict(from_attributes=True)


class ContentLineOut(_FromResult):
    content: str
    stock: int
    in_transit: int
    need_lead: int
    need_horizon: int
    balance: int
    order_quantity: int


class SiteForecastOut(_FromResult):
    site_id: str
    name: str
    depot_id: str | None
    lead_days: int
    shipment_due: bool
    by_content: list[ContentLineOut] = Field(validation_alias="lines")


class DepotLineOut(_FromResult):
    content: str
    shippable: int
    shortfall: int
    balance: int


class DepotForecastOut(_FromResult):
    depot_id: str
    name: str
    site_ids: list[str]
    by_content: list[DepotLineOut] = Field(validation_alias="lines")


class ForecastOut(_FromResult):
    """Per content: the unblinded monitor's variant."""

    as_of: date
    weeks: int
    horizon_days: int
    sites: list[SiteForecastOut]
    depots: list[DepotForecastOut]


class BlindedForecastOut(_FromResult):
    """Totals over contents: every blinded role's variant."""

    as_of: date
    weeks: int
    horizon_days: int
    sites: list[SiteTotals]  # the service's own totals: no field could carry a content
    depots: list[DepotTotals]


def forecast_out(result: Forecast | BlindedForecast) -> ForecastOut | BlindedForecastOut:
    """The body of the variant the service returned (it chose it by the caller's role)."""
    if isinstance(result, Forecast):
        return ForecastOut.model_validate(result)
    return BlindedForecastOut.model_validate(result)
