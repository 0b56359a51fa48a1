"""Prometheus metrics: what the service did (counted from its committed audit entries, so the
API, the pages and the CLI's server-side jobs count alike), how long each route took, and which
sites are below their resupply trigger (computed at each scrape).

No label ever carries an arm, a kit content, a lot or a kit number: labels are audit action
names, refusal codes (arm-independent by design, docs/supply.md), shipment kinds, site ids,
route templates, methods and statuses.

Several server processes (`irt serve --workers N`): set PROMETHEUS_MULTIPROC_DIR before they
start (`irt serve` makes one when N > 1) and every scrape sums all processes; otherwise each
process counts on its own (docs/deployment.md, "Metrics").
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.api.problems import problem
from app.db.engine import Database
from app.domain.study import StudyDefinition
from app.services import audit
from app.services.supply_health import sites_below_trigger
from app.services.transaction import utcnow

log = logging.getLogger(__name__)

RANDOMIZATIONS = Counter("irt_randomizations", "Subjects randomized (committed).", registry=None)
DISPENSINGS = Counter(
    "irt_dispensings", "Dosing visits dispensed (committed), day 1 included.", registry=None
)
REPLACEMENTS = Counter("irt_kit_replacements", "Kits replaced (damaged or lost).", registry=None)
UNBLINDINGS = Counter("irt_unblindings", "Emergency unblindings (committed).", registry=None)
REFUSALS = Counter(
    "irt_refusals",
    "Refused commands and forbidden requests, by refusal code and audit action.",
    ["code", "action"],
    registry=None,
)
RESUPPLY_REQUESTS = Counter(
    "irt_resupply_requests",
    "Shipments requested for a site, by kind (initial, resupply, urgent, manual).",
    ["kind"],
    registry=None,
)
LATENCY = Histogram(
    "irt_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
OWN: tuple[Collector, ...] = (
    RANDOMIZATIONS,
    DISPENSINGS,
    REPLACEMENTS,
    UNBLINDINGS,
    REFUSALS,
    RESUPPLY_REQUESTS,
    LATENCY,
)
_SIMPLE = {
    "subject.randomize": RANDOMIZATIONS,
    "subject.dispense": DISPENSINGS,
    "subject.replace_kit": REPLACEMENTS,
    "subject.unblind": UNBLINDINGS,
}
_KINDS = frozenset({"initial", "resupply", "urgent", "manual"})


def _after(entry: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(entry.get("after") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def count_committed(entries: Sequence[Mapping[str, Any]]) -> None:
    """The audit listener: one committed transaction's entries."""
    for entry in entries:
        action = str(entry.get("action", ""))
        if action in _SIMPLE:
            _SIMPLE[action].inc()
        elif action.endswith("_refused") or action == "request.forbidden":
            code = str(_after(entry).get("code") or "unknown")
            REFUSALS.labels(code=code[:64], action=action).inc()
        elif action == "shipment.request":
            kind = str(_after(entry).get("kind"))
            RESUPPLY_REQUESTS.labels(kind=kind if kind in _KINDS else "other").inc()


class SiteStockCollector(Collector):
    """irt_site_stock_below_trigger{site}: 1 when the resupply policy would ship to the site now
    (some stock is below its trigger), read from the database at each scrape."""

    def __init__(self, db: Database, study: StudyDefinition) -> None:
        self.db, self.study = db, study

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "irt_site_stock_below_trigger",
            "1 when the site's stock is below its resupply trigger (a shipment is due), else 0.",
            labels=["site"],
        )
        try:
            with self.db.read() as session:
                below = sites_below_trigger(session, study=self.study, today=utcnow().date())
        except Exception:  # the database is down: /ready says so; the counters still answer
            log.warning("irt_site_stock_below_trigger: the database could not be read")
            below = {}
        for site, flag in below.items():
            family.add_metric([site], 1.0 if flag else 0.0)
        yield family


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    LATENCY.labels(method=method, route=route, status=str(status)).observe(seconds)


def exposition(db: Database, study: StudyDefinition) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # all processes, summed
    else:
        for collector in OWN:
            registry.register(collector)
    registry.register(SiteStockCollector(db, study))
    return generate_latest(registry)


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def install(app: FastAPI, *, token: str | None) -> None:
    """Serve GET /metrics to holders of IRT_METRICS_TOKEN (a bearer token); unset, /metrics is
    not served at all (404), so that nothing is exposed by default."""
    audit.on_committed(count_committed)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if token is None:
            return problem(404, "not_found", "Not Found", request.url.path)
        if not _authorized(request, token):
            return problem(
                401,
                "unauthorized",
                "The metrics need the bearer token of IRT_METRICS_TOKEN.",
                request.url.path,
            )
        body = exposition(request.app.state.db, request.app.state.study)
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
