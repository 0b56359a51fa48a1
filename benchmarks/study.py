"""The bench study: the shipped IMC-002 definition, with room for a large run."""

from __future__ import annotations

from typing import Any

from app.domain.study import StudyDefinition, load_study, parse_study

COUNTRIES = ("DE", "FR", "IT", "ES", "NL", "BE", "PL", "US")


def site_code(index: int) -> str:
    return f"{COUNTRIES[index % len(COUNTRIES)]}{index + 1:02d}"


def bench_study(randomizations: int, sites: int = 32) -> StudyDefinition:
    """Phase II cap large enough for the run (total_cap = sum of caps) and `sites` demo sites."""
    data: dict[str, Any] = load_study().model_dump(mode="json")
    cap = randomizations + 50
    data["phase_ii"]["cap"] = cap
    data["total_cap"] = cap + sum(c["cap"] for c in data["phase_ib"]["cohorts"])
    data["code"] = "IMC-002-BENCH"
    data["demo_sites"] = [
        {
            "code": site_code(i),
            "name": f"Bench site {i + 1}",
            "country": COUNTRIES[i % len(COUNTRIES)],
        }
        for i in range(sites)
    ]
    return parse_study(data)
