"""The blind-leak figure: how well an adversary who sees only what blinded roles see guesses each
subject's arm, against the prior that the allocation ratio alone gives (0.75 in a 3:1 stage).

What a blinded pharmacist or coordinator sees of a subject is summed into a few numbers
(`SubjectSeen.features`): refusals while the shelf showed enough kits, visits served on a day
another subject was refused, kits later than the earliest on the shelf and by how much, kits from
the newest shipment, the time to and size of the next shipment after randomization, and tiers
left stranded when the subject took the last kits of one content there. Six simple strategies
each read one of them; a logistic-regression classifier reads all of them (and
their squares). Every guess is scored on trials the strategy or classifier was not fitted on
(two-fold: fit on one half of the trials, score the other, and back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.simulation.state import N_FEATURES, Subject

Matrix = NDArray[np.float64]

STRATEGIES: dict[str, Callable[[Matrix], NDArray[np.bool_]]] = {
    "refused while stock is shown": lambda x: x[:, 0] > 0,
    "served while another was refused": lambda x: x[:, 2] > 0,
    "later expiry than the oldest on the shelf": lambda x: x[:, 3] > 0,
    "kits from the newest shipment": lambda x: x[:, 5] > 0.5,
    "shipment within a week of randomization": lambda x: x[:, 6] < 7 / 60,
    "took the last kits of a tier left stranded": lambda x: x[:, 9] > 0,
}
"""Simple strategies: each splits the subjects on one thing seen; the guess in each part is the
arm more common there in the trials fitted on."""


@dataclass(frozen=True)
class Accuracy:
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def interval(self) -> tuple[float, float]:
        """Wilson score interval, 95 %."""
        if not self.n:
            return (0.0, 1.0)
        z, p, n = 1.959964, self.value, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class StageLeak:
    stage: str
    prior: float
    """Accuracy of always guessing the more common arm of the stage's ratio."""
    subjects: int
    classifier: Accuracy
    strategies: dict[str, Accuracy]

    @property
    def best(self) -> Accuracy:
        return max([self.classifier, *self.strategies.values()], key=lambda a: a.value)


@dataclass
class Observations:
    """Per stage: the features of every subject, its arm (1 = active) and its trial."""

    x: list[list[float]]
    y: list[int]
    trial: list[int]


def collect(
    observations: dict[str, Observations], *, subjects: Sequence[Subject], trial: int, active: str
) -> None:
    for subject in subjects:
        seen = observations.setdefault(subject.stage, Observations([], [], []))
        seen.x.append(subject.seen.features(subject.vials))
        seen.y.append(int(subject.arm == active))
        seen.trial.append(trial)


def _expand(x: Matrix) -> Matrix:
    mean, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / np.where(sd > 0, sd, 1.0)
    return np.hstack([np.ones((len(x), 1)), z, z * z])


def _fit(x: Matrix, *, y: Matrix, ridge: float = 1.0, rounds: int = 12) -> Matrix:
    """Logistic regression by Newton's method with a ridge penalty."""
    w = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(rounds):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return w


def _majority(y: Matrix) -> int:
    return int(y.mean() >= 0.5) if len(y) else 1


def stage_leak(stage: str, seen: Observations, active_share: float) -> StageLeak:
    """Two-fold scores of the classifier and of each strategy for one stage."""
    x = np.asarray(seen.x, dtype=np.float64).reshape(-1, N_FEATURES)
    y = np.asarray(seen.y, dtype=np.float64)
    trials = np.asarray(seen.trial)
    fold = trials % 2 == 0
    correct = 0
    by_strategy = dict.fromkeys(STRATEGIES, 0)
    for train, test in ((fold, ~fold), (~fold, fold)):
        if not train.any() or not test.any():
            continue
        expanded = _expand(x)
        w = _fit(expanded[train], y=y[train])
        guess = (expanded[test] @ w) >= 0
        correct += int((guess == (y[test] == 1)).sum())
        for name, split in STRATEGIES.items():
            on_train, on_test = split(x[train]), split(x[test])
            guess_on = _majority(y[train][on_train])
            guess_off = _majority(y[train][~on_train])
            guessed = np.where(on_test, guess_on, guess_off)
            by_strategy[name] += int((guessed == y[test]).sum())
    n = len(y) if fold.any() and (~fold).any() else 0
    return StageLeak(
        stage,
        max(active_share, 1 - active_share),
        len(y),
        Accuracy(correct, n),
        {name: Accuracy(c, n) for name, c in by_strategy.items()},
    )
