"""What a trigger's message changed: conversion of the sent vs the control group, with 95 % intervals.

Pure arithmetic over counts, no database and no I/O, so the results read, the tests and any
future report share one definition. The intervals are the ones Fagerland, Lydersen & Laake
("Recommended confidence intervals for two independent binomial proportions", Stat Methods Med
Res 2015) recommend for general use: both stay inside their possible range, behave at 0 and 100 %,
and keep close to 95 % coverage at the small counts a young trigger has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The 97.5th percentile of the standard normal: a two-sided 95 % interval.
Z95 = 1.959963984540054

# "Not enough data yet" below these. The intervals themselves stay valid at any size, but below
# them they are too wide to act on and too easily moved by one contact: with 100 per arm the
# difference's interval is still about ±8 pp at a 10 % conversion, and with fewer than
# 5 conversions in an arm (the classic np ≥ 5 rule for normal-based scores) one more goal moves
# the lift by 20 % or more, and with none in the control the lift has no upper bound at all.
MIN_PER_ARM = 100
MIN_CONVERSIONS_PER_ARM = 5


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval; None where it is undefined or unbounded."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Comparison:
    difference: Interval  # conversion(sent) - conversion(control), as a fraction (0.032 = 3.2 pp)
    lift: Interval  # conversion(sent) / conversion(control) - 1 (0.25 = +25 %)
    enough_data: bool


def conversion(goals: int, exposed: int) -> float | None:
    return goals / exposed if exposed else None


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for one proportion x/n (no continuity correction)."""
    _check_counts(x, n)
    if n == 0:
        return 0.0, 1.0
    p = x / n
    z2 = z * z
    centre = (x + z2 / 2) / (n + z2)
    half = z * math.sqrt(x * (n - x) / n + z2 / 4) / (n + z2)
    # At x = 0 or x = n one bound is exactly 0 or 1; rounding must not push it past p.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """p1 - p2 with Newcombe's hybrid score interval (method 10 of Newcombe, Stat Med 1998).

    Each proportion gets its Wilson interval; the two distances from estimate to bound are
    combined as if independent normal errors (the "square-and-add" that Zou & Donner later called
    MOVER). It needs no iteration and, unlike the Wald interval, never leaves [-1, 1] or
    collapses to zero width at 0 or 100 %.
    """
    if n1 == 0 or n2 == 0:
        _check_counts(x1, n1)
        _check_counts(x2, n2)
        return Interval(None, None, None)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


def _restricted_mle(x1: int, n1: int, x2: int, n2: int, ratio: float) -> tuple[float, float]:
    """The MLE of (p1, p2) under p1 = ratio * p2: the smaller root of a quadratic (Koopman 1984)."""
    a = (n1 + n2) * ratio
    b = -(ratio * (n1 + x2) + x1 + n2)
    c = float(x1 + x2)
    disc = max(0.0, b * b - 4 * a * c)
    p2 = (-b - math.sqrt(disc)) / (2 * a)
    p2 = min(max(p2, 0.0), 1.0)
    return min(ratio * p2, 1.0), p2


def _score_statistic(x1: int, n1: int, x2: int, n2: int, ratio: float) -> float:
    """Koopman's score statistic for H0: p1 / p2 = ratio (signed: > 0 when p1 / p2 > ratio)."""
    p1t, p2t = _restricted_mle(x1, n1, x2, n2, ratio)
    num = x1 / n1 - ratio * x2 / n2
    var = p1t * (1 - p1t) / n1 + ratio * ratio * p2t * (1 - p2t) / n2
    if var <= 0.0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _solve(x1: int, n1: int, x2: int, n2: int, target: float, lo: float, hi: float) -> float:
    """The ratio in [lo, hi] where the (decreasing) score statistic equals target, by bisection
    on the log scale: ratios span decades and bisection cannot fail to converge."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(200):
        mid = (a + b) / 2
        if _score_statistic(x1, n1, x2, n2, math.exp(mid)) > target:
            a = mid
        else:
            b = mid
        if b - a < 1e-12:
            break
    return math.exp((a + b) / 2)


def score_ratio(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """p1 / p2 with Koopman's asymptotic score interval (Koopman, Biometrics 1984).

    Why this one for the lift: it is the interval Fagerland et al. recommend for the ratio of two
    proportions at every sample size; the Katz log (Wald) interval it replaces is undefined at a
    zero count and too narrow at small ones, and a ratio's interval is naturally lopsided, which
    the score inversion gives and a symmetric one cannot. It is the set of ratios the score test
    does not reject, found by bisection (no closed form); statsmodels'
    confint_proportions_2indep(compare="ratio", method="score", correction=False) computes the
    same interval, and the tests hold the two together.

    Bounds are None where the data put no limit on them: no goals in the control leave the ratio
    unbounded above (and undefined), no goals in the sent group leave it with no lower bound but 0.
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    if n1 == 0 or n2 == 0 or (x1 == 0 and x2 == 0):
        return Interval(None, None, None)
    estimate = (x1 / n1) / (x2 / n2) if x2 else None
    # The statistic falls from +inf to -inf as the ratio grows; bracket each bound first.
    if x1 == 0:
        low: float | None = 0.0
    else:
        lo = hi = 1.0
        while _score_statistic(x1, n1, x2, n2, lo) < z and lo > 1e-12:
            lo /= 10
        while _score_statistic(x1, n1, x2, n2, hi) >= z and hi < 1e12:
            hi *= 10
        low = _solve(x1, n1, x2, n2, z, lo, hi)
    if x2 == 0:
        high: float | None = None
    else:
        hi = 1.0
        while _score_statistic(x1, n1, x2, n2, hi) > -z and hi < 1e12:
            hi *= 10
        lo = min(1.0, estimate or 1.0)
        while _score_statistic(x1, n1, x2, n2, lo) <= -z and lo > 1e-12:
            lo /= 10
        high = _solve(x1, n1, x2, n2, -z, lo, hi)
    return Interval(estimate, low, high)


def compare(sent_goals: int, sent: int, control_goals: int, control: int) -> Comparison:
    """The sent group against the control group: difference and lift, each with its interval."""
    ratio = score_ratio(sent_goals, sent, control_goals, control)
    lift = Interval(
        None if ratio.estimate is None else ratio.estimate - 1,
        None if ratio.low is None else ratio.low - 1,
        None if ratio.high is None else ratio.high - 1,
    )
    enough = (
        sent >= MIN_PER_ARM
        and control >= MIN_PER_ARM
        and sent_goals >= MIN_CONVERSIONS_PER_ARM
        and control_goals >= MIN_CONVERSIONS_PER_ARM
    )
    return Comparison(newcombe_difference(sent_goals, sent, control_goals, control), lift, enough)


def _check_counts(x: int, n: int) -> None:
    if not 0 <= x <= n:
        raise ValueError(f"need 0 <= successes <= trials, got {x} of {n}")
