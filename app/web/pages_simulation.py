"""The simulation page: many simulated trials of a bundled or uploaded scenario, run while the
user waits, with their figures, two inline SVG plots and the same run as JSON and CSV.

The use cases are app/services/simulation.py (as `irt simulate`). Nothing of the real trial is
read: a simulated trial draws its own subjects and allocations, so the figures per kit content
reveal nothing about the real trial's arms and the page shows them to the supply manager and
the sponsor admin as well as to the unblinded monitor."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup
from starlette.datastructures import UploadFile

from app.api.deps import StudyDep
from app.api.downloads import csv_download
from app.domain.errors import DomainError, validation_error
from app.domain.roles import PLANNERS
from app.domain.study import StudyDefinition
from app.services import simulation
from app.services.actor import Actor
from app.web.forms import Form, FormErrors, FormState, errors_from_service, form_values, render_form
from app.web.refusals import PageRefused
from app.web.session import page_actor
from app.web.svg_plots import Panel, Series, small_multiples

router = APIRouter()

Planners = Annotated[Actor, Depends(page_actor(*PLANNERS))]
Param = Annotated[str | None, Query(max_length=40)]

MAX_TRIALS = 200
"""On the web the trials run while the user waits (about 0.1 s per trial per CPU)."""
DEFAULT_TRIALS = 20
MAX_SEED = 999_999_999
UPLOAD_FIELD = "scenario_file"
RENAMES = {"scenario_toml": UPLOAD_FIELD}
"""The service's field of an uploaded text is the form's file field."""
WAIT_SECONDS = 120.0
_running = threading.Lock()
"""One simulation at a time per server process: each one uses every CPU."""


def _whole(text: str | None, *, name: str, low: int, high: int, errors: FormErrors) -> int | None:
    """A whole number from a form or query value, else an error next to the field."""
    value = (text or "").strip()
    if value.isascii() and value.isdigit() and len(value) <= len(str(high)):
        number = int(value)
        if low <= number <= high:
            return number
    noun = "trials" if name == "trials" else "the seed"
    errors.add(name, f"Enter a whole number of {noun} from {low} to {high}.")
    return None


def _run(
    study: StudyDefinition, *, scenario: simulation.Scenario, trials: int, seed: int
) -> simulation.Summary:
    if not _running.acquire(timeout=WAIT_SECONDS):
        raise PageRefused(
            503, "Busy", "Another simulation is still running. Try again in a minute."
        )
    try:
        return simulation.run(
            study=study, scenario=scenario, trials=trials, seed=seed, max_trials=MAX_TRIALS
        )
    finally:
        _running.release()


def _percent(value: float) -> str:
    return f"{100 * value:g} %"


def _plots(summary: simulation.Summary) -> tuple[Markup, Markup]:
    """(a) mean stock per site and content by week, (b) share of trials with a refusal."""
    n = f"{summary.trials} simulated trial{'s' if summary.trials != 1 else ''}"
    stock = small_multiples(
        plot_id="stock-plot",
        title="Stock at each site over time",
        description=(
            f"Mean kits on the shelf at the start of each week, one chart per site, one line "
            f"per kit content ({', '.join(summary.contents)}), over {n}."
        ),
        panels=[
            Panel(
                f"Site {site}",
                [Series(c, summary.stock_by_week[site][c]) for c in summary.contents],
            )
            for site in summary.sites
        ],
        x_label="Week of the trial",
        y_label="Kits (mean)",
    )
    peak, where = 0.0, ""
    for site, risks in summary.stockout_risk_by_week.items():
        for week, risk in enumerate(risks):
            if risk > peak:
                peak, where = risk, f" (highest: {_percent(risk)} at site {site} in week {week})"
    risk_plot = small_multiples(
        plot_id="risk-plot",
        title="Risk of running out at each site",
        description=(
            f"Share of the {n} with a refused randomization or visit at the site in each week, "
            f"one chart per site{where or ', none in any week'}."
        ),
        panels=[
            Panel(f"Site {site}", [Series("trials with a refusal", risks)])
            for site, risks in summary.stockout_risk_by_week.items()
        ],
        x_label="Week of the trial",
        y_label="Trials with a refusal",
        y_format=_percent,
        y_max=max(peak, 0.01),
    )
    return Markup(stock), Markup(risk_plot)  # every text escaped by svg_plots


@dataclass(frozen=True)
class Result:
    summary: simulation.Summary
    stock_svg: Markup
    risk_svg: Markup
    downloads: str | None
    """The query string of the downloads (a bundled scenario), else None (an upload)."""


DEFAULTS = {"scenario": simulation.DEFAULT_SCENARIO, "trials": str(DEFAULT_TRIALS), "seed": "1"}


def _page(
    request: Request, *, form: FormState | None = None, result: Result | None = None
) -> Response:
    return render_form(
        request,
        "supply/simulation.html",
        form=form,
        defaults=DEFAULTS,
        title="Supply simulation",
        scenarios=[(s.name, s.title) for s in simulation.bundled_scenarios()],
        result=result,
        max_trials=MAX_TRIALS,
        max_seed=MAX_SEED,
        upload_field=UPLOAD_FIELD,
    )


@router.get("/supply/simulation", response_class=HTMLResponse)
def simulation_form(request: Request, actor: Planners) -> Response:
    """The form: a bundled scenario or an uploaded one, the number of trials, the seed."""
    return _page(request)


def _uploaded(form: Form, errors: FormErrors) -> str | None:
    """The uploaded scenario's text; None when no file was chosen (or it could not be read)."""
    upload = form.get(UPLOAD_FIELD)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    raw = upload.file.read(simulation.MAX_SCENARIO_CHARS + 1)
    if len(raw) > simulation.MAX_SCENARIO_CHARS:
        kib = simulation.MAX_SCENARIO_CHARS // 1024
        errors.add(UPLOAD_FIELD, f"The scenario file is longer than {kib} KiB.")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.add(UPLOAD_FIELD, "The scenario file is not UTF-8 text (a TOML file).")
        return None


def _refusal(errors: FormErrors, exc: DomainError) -> None:
    if exc.code != "validation_error":
        raise exc
    for name, message in errors_from_service(exc, RENAMES).fields.items():
        errors.add(name, message)


@router.post("/supply/simulation", response_class=HTMLResponse)
def simulation_run(request: Request, actor: Planners, form: Form, study: StudyDep) -> Response:
    """Run the simulation and show its figures under the form (as entered); a refused input
    is shown next to its field (422) and nothing runs."""
    values = form_values(form)
    errors = FormErrors()
    text = _uploaded(form, errors)
    uploaded = text is not None or UPLOAD_FIELD in errors.fields
    name = None if uploaded else values.get("scenario", "")
    trials = _whole(
        values.get("trials"),
        name="trials",
        low=simulation.MIN_TRIALS,
        high=MAX_TRIALS,
        errors=errors,
    )
    seed = _whole(values.get("seed"), name="seed", low=0, high=MAX_SEED, errors=errors)
    scenario = None
    if not uploaded or text is not None:
        try:
            scenario = simulation.load(study=study, name=name, text=text)
        except DomainError as exc:
            _refusal(errors, exc)
    if errors or scenario is None or trials is None or seed is None:
        return _page(request, form=FormState(values, errors, 422))
    summary = _run(study, scenario=scenario, trials=trials, seed=seed)
    stock_svg, risk_svg = _plots(summary)
    query = None if name is None else urlencode({"scenario": name, "trials": trials, "seed": seed})
    return _page(
        request, form=FormState(values), result=Result(summary, stock_svg, risk_svg, query)
    )


class RunQuery(NamedTuple):
    """The run a download names: a bundled scenario, the number of trials, the seed."""

    scenario: str | None
    trials: str | None
    seed: str | None


def _run_query(scenario: Param = None, trials: Param = None, seed: Param = None) -> RunQuery:
    return RunQuery(scenario, trials, seed)


Run = Annotated[RunQuery, Depends(_run_query)]


def _download(study: StudyDefinition, query: RunQuery) -> tuple[str, simulation.Summary]:
    """The run a download names, computed again: the same seed gives the same figures. A bad
    parameter is a 422 page."""
    errors = FormErrors()
    count = _whole(
        query.trials, name="trials", low=simulation.MIN_TRIALS, high=MAX_TRIALS, errors=errors
    )
    first = _whole(query.seed, name="seed", low=0, high=MAX_SEED, errors=errors)
    if count is None or first is None:
        name, message = next(iter(errors.fields.items()))
        raise validation_error(name, message)
    name = query.scenario or simulation.DEFAULT_SCENARIO
    chosen = simulation.load(study=study, name=name)
    return f"simulation-{name}-seed{first}-{count}trials", _run(
        study, scenario=chosen, trials=count, seed=first
    )


@router.get("/supply/simulation.json")
def simulation_json(actor: Planners, study: StudyDep, query: Run) -> Response:
    """The run's figures as `irt simulate --json` writes them."""
    filename, summary = _download(study, query)
    return JSONResponse(
        simulation.as_json(summary),
        headers={"Content-Disposition": f'attachment; filename="{filename}.json"'},
    )


@router.get("/supply/simulation.csv")
def simulation_csv(actor: Planners, study: StudyDep, query: Run) -> Response:
    """One row per simulated trial and kit content, as `irt simulate --csv` writes them."""
    filename, summary = _download(study, query)
    return csv_download(simulation.as_csv(summary), f"{filename}.csv")
