"""`python -m benchmarks.simulation`: 1,000 simulated IMC-002 trials per bundled scenario.

Reports the wall time on this machine (every CPU), P(any missed dose), the overage and the blind
leak, to benchmarks/results/simulation.md and simulation.json (git-ignored); the figures of the
last run on the project's machine are copied into benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from app.domain.study import load_study
from app.services import simulation

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("imc002-demo", "imc002-20-sites")


def run(trials: int, seed: int) -> list[dict[str, Any]]:
    study = load_study()
    rows = []
    for name in SCENARIOS:
        scenario = simulation.load(study=study, name=name)
        print(f"[simulation] {name}: {trials} trials", file=sys.stderr, flush=True)
        summary = simulation.run(study=study, scenario=scenario, trials=trials, seed=seed)
        rows.append({"name": name, **simulation.as_json(summary)})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"## Simulation ({os.cpu_count()} CPUs)",
        "| scenario | trials | seconds | P(any missed dose) (95 %) | missed / 1,000 visits | "
        "overage % | phase Ib: prior, classifier (95 %) | phase II: prior, classifier (95 %) |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        low, high = row["p_any_missed_dose_interval_95"]
        leak = row["blind_leak"]
        stages = []
        for stage in ("phase_ib", "phase_ii"):
            c = leak[stage]["classifier"]
            stages.append(
                f"{leak[stage]['prior']:.2f}, {c['accuracy']:.4f} "
                f"({c['interval_95'][0]:.4f} to {c['interval_95'][1]:.4f})"
            )
        lines.append(
            f"| {row['name']} | {row['trials']} | {row['seconds']:.1f} | "
            f"{row['p_any_missed_dose']:.3f} ({low:.3f} to {high:.3f}) | "
            f"{row['missed_doses_per_1000_visits']:.2f} | {row['overage_percent']:.1f} | "
            f"{stages[0]} | {stages[1]} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = run(args.trials, args.seed)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "simulation.json").write_text(json.dumps(rows, indent=1), "utf-8")
    text = markdown(rows)
    (RESULTS / "simulation.md").write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
