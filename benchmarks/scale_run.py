"""`python -m benchmarks.scale_run`: PostgreSQL at scale, in parts that can be skipped.

- build: the base bench database (as benchmarks.run sets it up) and one at `--scale` times the
  IMC-002 trial (benchmarks/scale.py), with the bulk build's time; with `--bulk-sites`, a
  second one where the trial grows by sites instead of by subjects per site;
- costs: CPU per request and p50 of randomize, dispense, inventory read and the enrolment
  report on each, side by side, the databases interleaved (benchmarks/costs.py);
- plans: the statements of each kind EXPLAINed on the large database (benchmarks/plans.py);
- multi: N server processes on one database (benchmarks/multiproc.py);
- open-loop: Poisson arrivals at rising rates, service and ceiling (benchmarks/openloop.py);
- replay: the service's own statements through the raw driver, against the service and the
  ceiling, one client, on copies of one base database (benchmarks/replay.py).
Writes benchmarks/results/scale.md and scale.json (git-ignored)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import costs, multiproc, openloop, plans, replay
from benchmarks.scale import BASE_SUBJECTS, BuildReport, build
from benchmarks.server import running_server
from benchmarks.setup import BenchDatabase, drop_database, set_up

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("costs", "plans", "multi", "open-loop", "replay")


def _log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _base(workdir: Path, room: int) -> BenchDatabase:
    return set_up("postgresql", workdir, room, 32)


def _build(
    args: argparse.Namespace, workdir: Path, bulk_sites: int
) -> tuple[BenchDatabase, BuildReport]:
    return build(
        workdir,
        subjects=args.scale * BASE_SUBJECTS,
        kits=args.scale * 6000,
        audit=args.scale * 10_000,
        site_stock_share=args.site_stock_share,
        bulk_sites=bulk_sites,
    )


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"scale": args.scale, "parts": sorted(args.parts)}
    made: list[str] = []
    try:
        big = base = None
        if {"costs", "plans"} & args.parts:
            _log(f"building the {args.scale}x database")
            big, built = _build(args, workdir, 0)
            made.append(big.url)
            report["build"] = vars(built)
            _log(f"built: {built.seconds}")
        if "plans" in args.parts and big is not None:
            _log("capturing and explaining statements")
            report["plans"] = plans.explain(big, plans.capture(big))
        if "costs" in args.parts and big is not None:
            _log("setting up the base database")
            base = _base(workdir, 2000)
            made.append(base.url)
            _log(f"costs on base and {args.scale}x, interleaved")
            pair = costs.measure(
                [base, big],
                args.requests,
                logs=[workdir / "costs-base.log", workdir / "costs-big.log"],
            )
            report["costs"] = [[["base", pair[0]], [f"{args.scale}x", pair[1]]]]
            if args.bulk_sites:
                # one 100x database at a time: the first is dropped before the second is built
                drop_database(big.url)
                made.remove(big.url)
                label = f"{args.scale}x by sites"
                _log(f"building the {label} database ({args.bulk_sites} more sites)")
                wide, built = _build(args, workdir, args.bulk_sites)
                made.append(wide.url)
                report["build_by_sites"] = vars(built) | {"bulk_sites": args.bulk_sites}
                _log(f"costs on base and {label}, interleaved")
                pair = costs.measure(
                    [base, wide],
                    args.requests,
                    logs=[workdir / "costs-base-2.log", workdir / "costs-by-sites.log"],
                )
                report["costs"].append([["base", pair[0]], [label, pair[1]]])
        if "multi" in args.parts:
            _log("multi-process")
            small = _base(workdir, 2 * args.multi_randomizations)
            made.append(small.url)
            report["multi"] = multiproc.run(
                small, args.processes, args.multi_randomizations, workdir
            )
        if "open-loop" in args.parts:
            _log("open loop")
            bench = base or _base(workdir, 2000)
            if base is None:
                made.append(bench.url)
            rates = [float(r) for r in args.rates.split(",")]
            with running_server(bench.url, workers=2, log=workdir / "open.log") as srv:
                service = openloop.service(srv.base, bench, rates, args.seconds)
            ceiling = openloop.ceiling(bench, rates, args.seconds)
            report["open_loop"] = {
                "service": service,
                "ceiling": ceiling,
                "service_highest": openloop.highest_under_bound(service),
                "ceiling_highest": openloop.highest_under_bound(ceiling),
            }
        if "replay" in args.parts:
            _log("replay")
            fresh = _base(workdir, 2000)
            made.append(fresh.url)
            report["replay"] = replay.measure(fresh, args.replay_requests, workdir)
    finally:
        if not args.keep:
            for url in made:
                drop_database(url)
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# PostgreSQL at {report['scale']}x", ""]
    if "build" in report:
        b = report["build"]
        lines += [
            f"Build: {b['subjects']:,} subjects, {b['kits']:,} kits, {b['audit_entries']:,} "
            "audit entries; " + ", ".join(f"{k} {v:.1f} s" for k, v in b["seconds"].items()),
            "",
        ]
    if "build_by_sites" in report:
        b = report["build_by_sites"]
        lines += [
            f"Build by sites: {b['bulk_sites']:,} more sites; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in b["seconds"].items()),
            "",
        ]
    if "costs" in report:
        for (base_label, base), (big_label, big) in report["costs"]:
            lines += [
                f"| request | {base_label} CPU ms | {big_label} CPU ms | CPU ratio "
                f"| {base_label} p50 ms | {big_label} p50 ms | p50 ratio | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for kind in costs.KINDS:
                a, z = base[kind], big[kind]
                lines.append(
                    f"| {kind} | {a['cpu_ms_per_request']:.1f} | {z['cpu_ms_per_request']:.1f} "
                    f"| {z['cpu_ms_per_request'] / a['cpu_ms_per_request']:.2f} "
                    f"| {a['p50_ms']:.1f} | {z['p50_ms']:.1f} | {z['p50_ms'] / a['p50_ms']:.2f} "
                    f"| {a['errors']} / {z['errors']} |"
                )
            lines.append("")
    if "plans" in report:
        for kind, rows in report["plans"].items():
            lines += [f"## Plans: {kind} ({len(rows)} statements)", ""]
            for row in rows:
                seq = [s for s in row["scans"] if s.startswith("**")]
                if seq:
                    lines.append(f"- {'; '.join(seq)}: `{row['statement'][:300]}`")
            lines.append("")
    if "multi" in report:
        m = report["multi"]
        lines += [
            f"Multi-process: 1 process {m['one']['per_s']:.1f}/s, {m['processes']} processes "
            f"{m['many']['per_s']:.1f}/s (ratio {m['ratio']:.2f}); idempotency "
            f"{m['idempotency']}; revocation {m['revocation']}; cap {m['cap']}",
            "",
        ]
    if "open_loop" in report:
        o = report["open_loop"]
        lines += ["| side | rate /s | planned | answered | errors | p50 ms | p99 ms |"]
        lines += ["|---|---:|---:|---:|---:|---:|---:|"]
        for side in ("service", "ceiling"):
            for s in o[side]:
                lines.append(
                    f"| {side} | {s['rate_per_s']:g} | {s['planned']} | {s['answered']} "
                    f"| {s['errors']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |"
                )
        lines += [
            "",
            f"Highest rate with p99 < {openloop.BOUND_MS:g} ms: service "
            f"{o['service_highest']}, ceiling {o['ceiling_highest']}",
        ]
        lines += [
            f"Errors at {s['rate_per_s']:g} /s ({side}): "
            + "; ".join(f"{n} {kind}" for kind, n in s.get("error_kinds", {}).items())
            for side in ("service", "ceiling")
            for s in o[side]
            if s["errors"]
        ]
    if "replay" in report:
        lines += ["", *replay_table(report["replay"])]
    return "\n".join(lines) + "\n"


def replay_table(sides: dict[str, Any]) -> list[str]:
    """CPU ms per request, client side (server, replaying or ceiling process) + database."""
    lines = [
        "| request | service | replay (same statements, raw driver) | ceiling "
        "| service / replay | replay / ceiling | service / ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, side in sides.items():
        s, r, c = (side[k] for k in ("service", "replay", "ceiling"))
        lines.append(
            f"| {kind} | {s['client_ms']:.1f} + {s['backend_ms']:.1f} "
            f"| {r['client_ms']:.1f} + {r['backend_ms']:.1f} "
            f"| {c['client_ms']:.1f} + {c['backend_ms']:.1f} "
            f"| {s['total_ms'] / r['total_ms']:.2f} | {r['total_ms'] / c['total_ms']:.2f} "
            f"| {s['total_ms'] / c['total_ms']:.2f} |"
        )
    lines += ["", "Replay by transaction (client + database ms per request):"]
    for kind, side in sides.items():
        r = side["replay"]
        parts = "; ".join(f"{p} {a:.1f} + {b:.1f}" for p, (a, b) in sorted(r["parts"].items()))
        lines.append(
            f"- {kind}: {r['statements']:.0f} statements, {r['transactions']:.0f} "
            f"transactions; {parts}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_run", description=__doc__)
    parser.add_argument("--scale", type=int, default=100, help="times the IMC-002 trial")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {','.join(PARTS)}")
    parser.add_argument(
        "--site-stock-share",
        type=float,
        default=0.0,
        help="share of the bulk kits not dispensed that sit at the sites (else at the depot)",
    )
    parser.add_argument(
        "--bulk-sites",
        type=int,
        default=640,
        help="for the costs, a second large database whose bulk subjects go to this many more "
        "sites (about 31 each at 100x), the measured site keeping the base's size; 0: skip it",
    )
    parser.add_argument("--requests", type=int, default=40, help="per kind, for the costs")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--multi-randomizations", type=int, default=300)
    parser.add_argument("--rates", default="1,2,3,5,10,20,30,45,60", help="open-loop arrivals /s")
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="per open-loop rate (30: about 100 answers at 3 a second)",
    )
    parser.add_argument("--replay-requests", type=int, default=60, help="per kind, for the replay")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.parts - set(PARTS):
        parser.error(f"unknown parts: {sorted(args.parts - set(PARTS))}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="irt-scale-") as tmp:
        report = run(args, Path(tmp))
    (args.out / "scale.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    text = markdown(report)
    (args.out / "scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
