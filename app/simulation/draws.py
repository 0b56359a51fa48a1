"""The chance events of a simulated trial: arrivals, weights, when a subject stops."""

from __future__ import annotations

import math
import random

from app.simulation.scenario import WeightDistribution


def arrivals(rng: random.Random, none: float, first: float) -> int:
    """Arrivals in one day at a site, Poisson by Knuth's method (the means here are well below
    1). `none` is exp(-mean), the chance of no arrival (a site's is the same every day), and
    `first` the method's first draw, made by the caller: at or below `none`, there is no arrival
    and no need to call."""
    k, p = 0, first
    while p > none:
        k += 1
        p *= rng.random()
    return k


def weight(rng: random.Random, *, shape: WeightDistribution, low: float, high: float) -> float:
    """A subject's weight: normal, truncated to the study's accepted range."""
    return min(max(rng.gauss(shape.mean_kg, shape.sd_kg), low), high)


def stop_index(rng: random.Random, *, per_year: float, interval_days: int, visits: int) -> int:
    """The visit before which a subject stops treatment, at a constant hazard `per_year`
    (`visits`, past the last one: never)."""
    if per_year <= 0:
        return visits
    p_stop = 1 - math.exp(-per_year * interval_days / 365)
    index = 1
    while index < visits and rng.random() >= p_stop:
        index += 1
    return index
