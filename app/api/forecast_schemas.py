"""Response bodies of the live forecast (app/services/forecast.py). The blinded and the
unblinded forecast are separate models, each built from its own service result: the blinded one
has no field that could carry a content."""

from __future__ import annotations

from pydantic import BaseModel

from app.services.forecast import BlindedForecast, Forecast


class ContentLineOut(BaseModel):
    content: str
    stock: int
    in_transit: int
    need_lead: int
    need_horizon: int
    balance: int
    order_quantity: int


class SiteForecastOut(BaseModel):
    site_id: str
    name: str
    depot_id: str | None
    lead_days: int
    shipment_due: bool
    by_content: list[ContentLineOut]


class DepotLineOut(BaseModel):
    content: str
    shippable: int
    shortfall: int
    balance: int


class DepotForecastOut(BaseModel):
    depot_id: str
    name: str
    site_ids: list[str]
    by_content: list[DepotLineOut]


class ForecastOut(BaseModel):
    """Per content: the unblinded monitor's variant."""

    as_of: str
    weeks: int
    horizon_days: int
    sites: list[SiteForecastOut]
    depots: list[DepotForecastOut]

    @classmethod
    def of(cls, forecast: Forecast) -> ForecastOut:
        return cls(
            as_of=forecast.as_of.isoformat(),
            weeks=forecast.weeks,
            horizon_days=forecast.horizon_days,
            sites=[
                SiteForecastOut(
                    site_id=s.site_id,
                    name=s.name,
                    depot_id=s.depot_id,
                    lead_days=s.lead_days,
                    shipment_due=s.shipment_due,
                    by_content=[
                        ContentLineOut(
                            content=line.content,
                            stock=line.stock,
                            in_transit=line.in_transit,
                            need_lead=line.need_lead,
                            need_horizon=line.need_horizon,
                            balance=line.balance,
                            order_quantity=line.order_quantity,
                        )
                        for line in s.lines
                    ],
                )
                for s in forecast.sites
            ],
            depots=[
                DepotForecastOut(
                    depot_id=d.depot_id,
                    name=d.name,
                    site_ids=list(d.site_ids),
                    by_content=[
                        DepotLineOut(
                            content=line.content,
                            shippable=line.shippable,
                            shortfall=line.shortfall,
                            balance=line.balance,
                        )
                        for line in d.lines
                    ],
                )
                for d in forecast.depots
            ],
        )


class SiteTotalsOut(BaseModel):
    site_id: str
    name: str
    depot_id: str | None
    lead_days: int
    shipment_due: bool
    stock: int
    in_transit: int
    need_lead: int
    need_horizon: int
    balance: int
    order_quantity: int


class DepotTotalsOut(BaseModel):
    depot_id: str
    name: str
    site_ids: list[str]
    shippable: int
    shortfall: int
    balance: int


class BlindedForecastOut(BaseModel):
    """Totals over contents: every blinded role's variant."""

    as_of: str
    weeks: int
    horizon_days: int
    sites: list[SiteTotalsOut]
    depots: list[DepotTotalsOut]

    @classmethod
    def of(cls, forecast: BlindedForecast) -> BlindedForecastOut:
        return cls(
            as_of=forecast.as_of.isoformat(),
            weeks=forecast.weeks,
            horizon_days=forecast.horizon_days,
            sites=[
                SiteTotalsOut(
                    site_id=s.site_id,
                    name=s.name,
                    depot_id=s.depot_id,
                    lead_days=s.lead_days,
                    shipment_due=s.shipment_due,
                    stock=s.stock,
                    in_transit=s.in_transit,
                    need_lead=s.need_lead,
                    need_horizon=s.need_horizon,
                    balance=s.balance,
                    order_quantity=s.order_quantity,
                )
                for s in forecast.sites
            ],
            depots=[
                DepotTotalsOut(
                    depot_id=d.depot_id,
                    name=d.name,
                    site_ids=list(d.site_ids),
                    shippable=d.shippable,
                    shortfall=d.shortfall,
                    balance=d.balance,
                )
                for d in forecast.depots
            ],
        )


def forecast_out(result: Forecast | BlindedForecast) -> ForecastOut | BlindedForecastOut:
    """The body of the variant the service returned (it chose it by the caller's role)."""
    if isinstance(result, Forecast):
        return ForecastOut.of(result)
    return BlindedForecastOut.of(result)
