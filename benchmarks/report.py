"""The benchmark report: machine description, a markdown table and the same as JSON."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.setup import PG_URL

GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
GOAL_CPU_RATIO = 2.0
"""CPU per request, (server + database) / (ceiling process + database), PostgreSQL."""


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg = str(row[0]) if row else "unknown"
    except psycopg.Error:
        pg = "unreachable"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "sqlite": sqlite3.sqlite_version,
        "git_commit": commit,
    }


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _cpu_ms(stats: dict[str, Any], cpus: int) -> str:
    """Machine-wide CPU time per request: busy share x CPUs / throughput."""
    rate = stats["throughput_per_s"]
    return f"{stats.get('cpu_busy', 0) * cpus * 1000 / rate:.1f}" if rate else "-"


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(values.items())) or "0"


def _cpu_split(report: dict[str, Any]) -> list[str]:
    """CPU ms per request by process, and the service / ceiling ratio without the load
    generator (benchmarks/cpu.py)."""
    lines = [
        "",
        "| engine | what | server ms | database ms | load generator ms | service: server + db "
        "| ceiling: process + db | ratio | goal (<= "
        f"{GOAL_CPU_RATIO:.0f}, PostgreSQL) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for engine, run in report["engines"].items():
        for kind in ("register", "randomize", "dispense"):
            mine = run["service"][kind].get("cpu_ms_per_request") or {}
            theirs = run["ceiling"].get(kind, {}).get("cpu_ms_per_request") or {}
            used = mine.get("server", 0.0) + mine.get("database", 0.0)
            bound = theirs.get("load", 0.0) + theirs.get("database", 0.0) if theirs else None
            ratio = run.get("cpu_ratio", {}).get(kind)
            goal = "-" if ratio is None else ("met" if ratio <= GOAL_CPU_RATIO else "not met")
            lines.append(
                f"| {engine} | {kind} | {mine.get('server', 0):.2f} | "
                f"{mine.get('database', 0):.2f} | {mine.get('load', 0):.2f} | {used:.2f} | "
                f"{'-' if bound is None else f'{bound:.2f}'} | "
                f"{'-' if ratio is None else f'{ratio:.2f}'} | {goal} |"
            )
    lines += [
        "",
        "Server: the uvicorn supervisor and its workers; database: the PostgreSQL backends "
        "connected to the run's database (none on SQLite, where the database runs inside the "
        "server); load generator: the benchmark's own process (the ceiling's threads run there, "
        "so for the ceiling it is the ceiling's process). CPU time from /proc/PID/stat.",
    ]
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Benchmark report",
        "",
        f"{m['date_utc']}, commit {m['git_commit']}. Machine: {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, SQLite {m['sqlite']}.",
        "",
        f"Run: {report['clients']} concurrent clients (one per site), "
        f"{report['randomizations']} randomizations and their week 4 dosing visits, "
        f"{report['workers']} uvicorn worker(s), server and clients on the same machine.",
        "",
        "| engine | what | requests | 201 | errors | retries | throughput /s | p50 ms | p95 ms "
        "| p99 ms | max ms | CPU busy | CPU ms / request |",
        "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, run in report["engines"].items():
        for endpoint, s in run["service"].items():
            lines.append(
                f"| {engine} | service {endpoint} | {s['requests']} | {s['created']} | "
                f"{_counts(s['errors'])} | {_counts(s['retries'])} | "
                f"{s['throughput_per_s']:.1f} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | "
                f"{_ms(s['p99_ms'])} | {_ms(s['max_ms'])} | {s.get('cpu_busy', 0):.0%} | "
                f"{_cpu_ms(s, m['nproc'])} |"
            )
        for kind, c in run["ceiling"].items():
            lines.append(
                f"| {engine} | ceiling {kind} | {c['requests']} | {c['created']} | "
                f"{c['errors']} | 0 | {c['throughput_per_s']:.1f} | {_ms(c['p50_ms'])} | "
                f"{_ms(c['p95_ms'])} | {_ms(c['p99_ms'])} | {_ms(c['max_ms'])} | "
                f"{c.get('cpu_busy', 0):.0%} | {_cpu_ms(c, m['nproc'])} |"
            )
    lines += [
        "",
        "| engine | service / ceiling (randomize throughput) | service randomize p99 ms | "
        f"goal (>= {GOAL_RATIO:.0%} and p99 < {GOAL_P99_MS:.0f} ms, PostgreSQL) | invariants |",
        "|---|---:|---:|---|---|",
    ]
    for engine, run in report["engines"].items():
        goal = "met" if run["goal_met"] else "not met"
        if engine != "postgresql":
            goal += " (reference only)"
        violations = run["invariants"]
        lines.append(
            f"| {engine} | {run['ratio']:.2f} | {_ms(run['service']['randomize']['p99_ms'])} | "
            f"{goal} | {'hold' if not violations else f'{len(violations)} violations'} |"
        )
    lines += _cpu_split(report)
    clients = report["clients"]
    lines += [
        "",
        f"CPU busy: share of the machine's {m['nproc']} CPUs in use during the phase (server, "
        "database and load generator together); CPU ms / request: that CPU time divided by the "
        "requests, what one request costs the whole machine. With closed-loop clients the mean "
        "latency is clients / throughput (Little's law): a p99 under "
        f"{GOAL_P99_MS:.0f} ms at {clients} clients needs more than "
        f"{clients / (GOAL_P99_MS / 1000):.0f} requests/s.",
    ]
    for engine, run in report["engines"].items():
        if run.get("faults"):
            f = run["faults"]
            lines += [
                "",
                f"Fault run on {engine}: {f['randomizations']} randomizations, faults fired: "
                f"{', '.join(f['fired']) or 'none'}; retries seen: {_counts(f['retries'])}; "
                f"errors: {_counts(f['errors'])}; acknowledged 201s: {f['acknowledged']}; "
                f"invariants: {'hold' if not f['invariants'] else f['invariants']}"
                + (f"; integrity_check: {f['integrity_check']}" if "integrity_check" in f else ""),
            ]
        for violation in run["invariants"][:20]:
            lines.append(f"- {engine} invariant violated: {violation}")
    return "\n".join(lines) + "\n"
