"""The statistics of a trigger's results, held to an independent implementation (statsmodels)
over many random counts, and to the worked examples Newcombe published with method 10."""

from __future__ import annotations

import math
import random
import warnings

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, score_test_proportions_2indep

from chat_server.triggers import stats

# Newcombe R. G., "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17 (1998) 873-890, Table II, method 10.
NEWCOMBE_1998 = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


def random_counts(rng: random.Random) -> tuple[int, int, int, int]:
    """Small and large samples, rare and common goals, and the edges (0 and all)."""
    out: list[int] = []
    for _ in range(2):
        n = rng.choice([rng.randint(1, 30), rng.randint(30, 500), rng.randint(500, 200_000)])
        shape = rng.random()
        x = 0 if shape < 0.07 else n if shape < 0.12 else rng.randint(0, n) if shape < 0.5 else min(n, int(n * rng.random() * 0.1))
        out += [x, n]
    return out[0], out[1], out[2], out[3]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_1998)
def test_the_difference_matches_newcombes_published_examples(counts: tuple[int, int, int, int],
                                                              published: tuple[float, float]) -> None:
    d = stats.newcombe_difference(*counts)
    assert d.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(d.low or 0, 4), round(d.high or 0, 4)) == published


def test_wilson_and_the_difference_match_statsmodels_on_random_counts() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        x1, n1, x2, n2 = random_counts(rng)
        low, high = proportion_confint(x1, n1, alpha=0.05, method="wilson")
        assert stats.wilson(x1, n1) == pytest.approx((low, high), abs=1e-9), (x1, n1)
        d = stats.newcombe_difference(x1, n1, x2, n2)
        expected = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff", alpha=0.05)
        assert (d.low, d.high) == pytest.approx(tuple(float(v) for v in expected), abs=1e-9), (x1, n1, x2, n2)
        assert d.low is not None and d.high is not None and -1 <= d.low <= (d.estimate or 0) <= d.high <= 1


def test_the_ratio_matches_statsmodels_score_interval_on_random_counts() -> None:
    """Each bound solves statsmodels' score test (its statistic is exactly ±z there), and equals
    statsmodels' own interval wherever that interval solves the same test: at a control of 100 %
    its closed-form roots miss (it then disagrees with its own test), and its root finder stops
    at about 1e-6 where ours goes on to 1e-12."""
    rng = random.Random(1984)
    compared = 0
    with warnings.catch_warnings():
        # statsmodels divides by zero on its way to an infinite bound (no control goals).
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(1500):
            x1, n1, x2, n2 = random_counts(rng)
            r = stats.score_ratio(x1, n1, x2, n2)
            if x1 == 0 and x2 == 0:
                assert r == stats.Interval(None, None, None)
                continue
            low, high = (float(v) for v in confint_proportions_2indep(
                x1, n1, x2, n2, method="score", compare="ratio", correction=False, alpha=0.05))
            if x2 == 0:
                assert r.estimate is None and r.high is None and math.isinf(high)
            else:
                assert r.estimate == pytest.approx((x1 / n1) / (x2 / n2))
                assert r.high is not None and _score(x1, n1, x2, n2, r.high) == pytest.approx(-stats.Z95, abs=1e-8)
                if _score(x1, n1, x2, n2, high) == pytest.approx(-stats.Z95, abs=1e-6):
                    assert r.high == pytest.approx(high, rel=1e-4), (x1, n1, x2, n2)
                    compared += 1
            if x1 == 0:
                # No goals sent: the test rejects no ratio near 0 (statsmodels' interval is erratic here).
                assert r.low == 0.0 and _score(x1, n1, x2, n2, 1e-12) < stats.Z95
            else:
                assert r.low is not None and _score(x1, n1, x2, n2, r.low) == pytest.approx(stats.Z95, abs=1e-8)
                if _score(x1, n1, x2, n2, low) == pytest.approx(stats.Z95, abs=1e-6):
                    assert r.low == pytest.approx(low, rel=1e-4), (x1, n1, x2, n2)
                    compared += 1
            assert (r.low or 0) <= (r.estimate if r.estimate is not None else math.inf) <= (r.high or math.inf)
    assert compared > 2000


def _score(x1: int, n1: int, x2: int, n2: int, ratio: float) -> float:
    return float(score_test_proportions_2indep(x1, n1, x2, n2, value=ratio, compare="ratio", correction=False).statistic)


def test_compare_gives_lift_as_ratio_minus_one_and_says_when_there_is_enough_data() -> None:
    c = stats.compare(60, 1000, 40, 1000)
    ratio = stats.score_ratio(60, 1000, 40, 1000)
    assert c.difference.estimate == pytest.approx(0.02)
    assert c.lift.estimate == pytest.approx(0.5)
    assert (c.lift.low, c.lift.high) == pytest.approx(((ratio.low or 0) - 1, (ratio.high or 0) - 1))
    assert c.enough_data
    # Each threshold on its own keeps the verdict back.
    assert not stats.compare(60, stats.MIN_PER_ARM - 1, 40, 1000).enough_data
    assert not stats.compare(60, 1000, 40, stats.MIN_PER_ARM - 1).enough_data
    assert not stats.compare(stats.MIN_CONVERSIONS_PER_ARM - 1, 1000, 40, 1000).enough_data
    assert not stats.compare(60, 1000, stats.MIN_CONVERSIONS_PER_ARM - 1, 1000).enough_data
    assert stats.compare(stats.MIN_CONVERSIONS_PER_ARM, stats.MIN_PER_ARM, stats.MIN_CONVERSIONS_PER_ARM,
                         stats.MIN_PER_ARM).enough_data


def test_empty_arms_give_no_numbers_rather_than_errors() -> None:
    c = stats.compare(0, 0, 0, 0)
    assert c.difference == stats.Interval(None, None, None) and c.lift == stats.Interval(None, None, None)
    assert not c.enough_data
    c = stats.compare(3, 50, 0, 0)
    assert c.difference.estimate is None and not c.enough_data
    # Goals in the sent group, none in the control: the difference is known, the lift has no top.
    c = stats.compare(5, 100, 0, 100)
    assert c.difference.estimate == pytest.approx(0.05) and c.lift.estimate is None and c.lift.high is None
    assert c.lift.low is not None and c.lift.low > -1
    assert stats.conversion(0, 0) is None and stats.conversion(1, 4) == 0.25


def test_impossible_counts_are_refused() -> None:
    for x, n in [(-1, 10), (11, 10)]:
        with pytest.raises(ValueError, match="successes"):
            stats.wilson(x, n)
        with pytest.raises(ValueError, match="successes"):
            stats.compare(x, n, 1, 10)
