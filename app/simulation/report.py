"""A simulation's figures as JSON, CSV and plain text."""

from __future__ import annotations

from typing import Any

from app.domain.csv_cells import csv_text
from app.simulation.adversary import Accuracy
from app.simulation.runner import Summary

CSV_COLUMNS = (
    "trial",
    "visits_due",
    "visits_missed",
    "refusals",
    "subjects_lost",
    "shipments",
    "content",
    "shipped",
    "dispensed",
    "expired",
    "left_at_sites",
)


def _accuracy(accuracy: Accuracy, prior: float) -> dict[str, Any]:
    low, high = accuracy.interval()
    return {
        "accuracy": round(accuracy.value, 4),
        "interval_95": [round(low, 4), round(high, 4)],
        "excess_over_prior": round(accuracy.value - prior, 4),
        "subjects_scored": accuracy.n,
    }


def summary_dict(summary: Summary) -> dict[str, Any]:
    """Everything but the per-trial rows: what `--json` writes and the page shows."""
    return {
        "scenario": summary.scenario,
        "policy": summary.policy,
        "trials": summary.trials,
        "seed": summary.seed,
        "levels": summary.levels,
        "seconds": round(summary.seconds, 2),
        "p_any_missed_dose": round(summary.p_any_missed, 4),
        "p_any_missed_dose_interval_95": [round(x, 4) for x in summary.p_any_missed_interval],
        "missed_doses_per_1000_visits": round(summary.missed_per_1000_visits, 3),
        "visits_due": summary.visits_due,
        "refusals_per_trial": round(summary.refusals_per_trial, 2),
        "subjects_lost_per_trial": round(summary.subjects_lost_per_trial, 3),
        "shipments_per_trial": round(summary.shipments_per_trial, 1),
        "kits_per_trial": {
            content: {k: round(v, 1) for k, v in figures.items()}
            for content, figures in summary.per_content.items()
        },
        "overage_percent": round(summary.overage_percent, 1),
        "blind_leak": {
            stage: {
                "prior": leak.prior,
                "subjects": leak.subjects,
                "classifier": _accuracy(leak.classifier, leak.prior),
                "strategies": {
                    name: _accuracy(a, leak.prior) for name, a in leak.strategies.items()
                },
            }
            for stage, leak in summary.leak.items()
        },
        "stock_by_week": summary.stock_by_week,
        "stockout_risk_by_week": summary.stockout_risk_by_week,
    }


def trials_csv(summary: Summary) -> str:
    """One row per trial and content (cells neutralised like every CSV, `csv_text`)."""
    return csv_text(
        CSV_COLUMNS,
        (
            (
                summary.seed + i,
                f.due,
                f.missed,
                f.refusals,
                f.lost,
                f.shipments,
                content,
                f.shipped[content],
                f.dispensed[content],
                f.expired[content],
                f.left[content],
            )
            for i, f in enumerate(summary.figures)
            for content in summary.contents
        ),
    )


def text(summary: Summary) -> str:
    """The figures a supply manager and a blinding reviewer read first."""
    low, high = summary.p_any_missed_interval
    lines = [
        f"{summary.scenario}: {summary.trials} trials, policy {summary.policy}, levels "
        f"trigger {summary.levels['trigger']}, target {summary.levels['target']}, cover "
        f"{summary.levels['cover_weeks']} weeks ({summary.seconds:.1f} s)",
        f"  P(any missed dose) per trial  {summary.p_any_missed:.3f}  "
        f"(95 % {low:.3f} to {high:.3f})",
        f"  missed doses per 1,000 visits {summary.missed_per_1000_visits:.2f}",
        "  (a refused visit is tried again daily; it is missed only when not served before its "
        "window closes)",
        f"  refusals per trial {summary.refusals_per_trial:.1f}, subjects not randomized for "
        f"want of kits {summary.subjects_lost_per_trial:.2f}, "
        f"shipments {summary.shipments_per_trial:.1f}",
        f"  overage {summary.overage_percent:.1f} %  (kits shipped beyond kits dispensed)",
    ]
    for content, figures in summary.per_content.items():
        lines.append(
            f"  {content:<10} shipped {figures['shipped']:.0f}, dispensed "
            f"{figures['dispensed']:.0f}, expired {figures['expired']:.0f}, wasted "
            f"{figures['wasted']:.0f} per trial"
        )
    lines.append("  blind leak (accuracy of guessing each subject's arm, scored on unseen trials):")
    for stage, leak in summary.leak.items():
        c_low, c_high = leak.classifier.interval()
        lines.append(
            f"    {stage}: prior {leak.prior:.3f}, classifier {leak.classifier.value:.4f} "
            f"(95 % {c_low:.4f} to {c_high:.4f}), over {leak.subjects} subjects"
        )
        for name, accuracy in leak.strategies.items():
            lines.append(f"      {name}: {accuracy.value:.4f}")
    return "\n".join(lines)
