"""`python -m benchmarks.run`: load, ceiling, invariants (and faults) on SQLite and PostgreSQL.

Writes benchmarks/results/report.md and report.json (the directory is git-ignored)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks import faults
from benchmarks.ceiling import CeilingPhase, run_ceiling
from benchmarks.cpu import ProcessMeter
from benchmarks.invariants import check
from benchmarks.load import percentile, run_load, summary
from benchmarks.report import GOAL_P99_MS, GOAL_RATIO, machine, markdown
from benchmarks.server import running_server
from benchmarks.setup import drop_database, set_up

RESULTS = Path(__file__).resolve().parent / "results"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def service_run(engine: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    _log(f"[{engine}] setting up the service database")
    bench = set_up(engine, workdir, args.randomizations, args.clients)
    try:
        _log(f"[{engine}] load: {args.clients} clients, {args.randomizations} randomizations")
        with running_server(bench.url, args.workers, log=workdir / f"server-{engine}.log") as srv:
            meter = ProcessMeter(srv.pid, _pg_database(bench.url))
            result = asyncio.run(
                run_load(srv.base, bench, args.clients, args.randomizations, meter=meter)
            )
        _log(f"[{engine}] checking invariants")
        violations = check(bench.url, result.acknowledged)
        return {
            "service": {name: summary(s) for name, s in result.stats.items()},
            "invariants": violations,
            "acknowledged": len(result.acknowledged),
        }
    finally:
        if not args.keep:
            drop_database(bench.url)


def _pg_database(url: str) -> str | None:
    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "postgresql" else None


def _ceiling_phase(phase: CeilingPhase, requests: int) -> dict[str, Any]:
    latencies = sorted(phase.latencies_ms)
    return {
        "requests": requests,
        "created": len(latencies),
        "errors": phase.errors,
        "throughput_per_s": requests / phase.wall_seconds if phase.wall_seconds else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else 0.0,
        "wall_seconds": phase.wall_seconds,
        "cpu_busy": phase.cpu_busy,
        "cpu_ms_per_request": {side: ms / requests for side, ms in phase.cpu_ms.items()},
    }


def ceiling_run(engine: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    _log(f"[{engine}] ceiling: setting up")
    bench = set_up(engine, workdir, args.randomizations, args.clients)
    try:
        _log(f"[{engine}] ceiling: {args.clients} threads, {args.randomizations} randomizations")
        result = run_ceiling(bench, args.clients, args.randomizations)
        return {
            name: _ceiling_phase(phase, args.randomizations)
            for name, phase in result.phases.items()
        }
    finally:
        if not args.keep:
            drop_database(bench.url)


def cpu_ratios(service: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, float | None]:
    """(server + database) / (ceiling process + database) CPU per request, per request kind:
    the load generator's HTTP client is left out of the comparison."""
    ratios: dict[str, float | None] = {}
    for kind in ("randomize", "dispense"):
        mine = service[kind].get("cpu_ms_per_request") or {}
        theirs = ceiling[kind].get("cpu_ms_per_request") or {}
        bound = theirs.get("load", 0.0) + theirs.get("database", 0.0)
        used = mine.get("server", 0.0) + mine.get("database", 0.0)
        ratios[kind] = used / bound if bound else None
    return ratios


def integrity_check(url: str) -> str:
    with sqlite3.connect(make_url(url).database or "") as conn:
        return ";".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def fault_run(engine: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A load run with a worker killed (and PostgreSQL restarted, or a SQLite writer killed
    mid-transaction); afterwards the invariants must hold for every acknowledged 201."""
    n = args.fault_randomizations
    _log(f"[{engine}] fault run: {n} randomizations")
    bench = set_up(engine, workdir, n, args.clients)
    root = Path(__file__).resolve().parents[1]
    try:
        with running_server(
            bench.url,
            max(args.workers, 2),
            log=workdir / f"server-faults-{engine}.log",
            IRT_IDEMPOTENCY_LEASE_SECONDS="5",
        ) as srv:
            killed: list[int] = []
            plan: dict[str, Any] = {"randomize": (n // 4, faults.worker_killer(srv.pid, killed))}
            if engine == "postgresql":
                plan["dispense"] = (n // 3, faults.restart_postgres_fault)
            else:

                async def kill_sqlite_writer() -> None:
                    await asyncio.to_thread(
                        faults.kill_mid_sqlite_transaction, bench.url, bench.sites[0], root
                    )

                plan["dispense"] = (n // 3, kill_sqlite_writer)
            result = asyncio.run(run_load(srv.base, bench, args.clients, n, faults=plan))
        retries: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for stats in result.stats.values():
            retries.update(stats.retries)
            errors.update(stats.errors)
        out: dict[str, Any] = {
            "randomizations": n,
            "fired": result.faults_fired,
            "retries": dict(retries),
            "errors": dict(errors),
            "acknowledged": len(result.acknowledged),
            "invariants": check(bench.url, result.acknowledged),
        }
        if engine == "sqlite":
            out["integrity_check"] = integrity_check(bench.url)
        return out
    finally:
        if not args.keep:
            drop_database(bench.url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (sites)")
    parser.add_argument("--randomizations", type=int, default=2000)
    parser.add_argument("--faults", action="store_true", help="also run the fault scenarios")
    parser.add_argument("--fault-randomizations", type=int, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    report: dict[str, Any] = {
        "machine": machine(),
        "clients": args.clients,
        "randomizations": args.randomizations,
        "workers": args.workers,
        "engines": {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="irt-bench-") as tmp:
        workdir = Path(tmp)
        for engine in engines:
            run = service_run(engine, args, workdir)
            run["ceiling"] = ceiling_run(engine, args, workdir)
            run["ratio"] = (
                run["service"]["randomize"]["throughput_per_s"]
                / run["ceiling"]["randomize"]["throughput_per_s"]
            )
            run["cpu_ratio"] = cpu_ratios(run["service"], run["ceiling"])
            run["goal_met"] = (
                run["ratio"] >= GOAL_RATIO and run["service"]["randomize"]["p99_ms"] < GOAL_P99_MS
            )
            if args.faults:
                run["faults"] = fault_run(engine, args, workdir)
            report["engines"][engine] = run
            if args.keep:
                _log(f"[{engine}] databases kept; server logs in {workdir} (removed at exit)")
    (args.out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    print(text)
    broken = any(
        run["invariants"] or (run.get("faults") or {}).get("invariants")
        for run in report["engines"].values()
    )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
