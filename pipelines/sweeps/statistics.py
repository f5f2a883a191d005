"""How sure a results table is: intervals on accuracies, tests between rows, and their correction.

Two sources of noise separate a printed accuracy from the truth: which videos happen to be
in the test set, and which training run produced the model (the seed: initial weights, data
order, clips). Every row is tested on the same videos, so rows are compared video by video.

- **One seed per row** (nothing measures retraining): a Wilson score interval on the row's
  videos, and McNemar's exact test on the videos exactly one of two rows gets right. Both
  cover the test videos only, and the table says so.
- **Several seeds**: each row's accuracy is the mean of its seeds', and its variance has two
  parts: the spread between seeds, *pooled over the table's rows* (a one-way ANOVA within
  rows: every row trains with the same recipe, and two seeds alone cannot estimate their own
  spread), divided by the row's seeds; plus the spread between test videos of the (seed-
  averaged) outcome, divided by the videos. A difference between rows takes both rows' seed
  parts and the video part of their paired differences. Intervals and tests use Student's t
  with the pooled seed spread's degrees of freedom. ``docs/statistics.md`` gives the reasoning
  and the simulation that checks it (coverage and false positives; ``tests/test_statistics.py``).
- **Many tests**: every p-value in a table gets a Holm-adjusted companion over all of the
  table's tests (statsmodels), and a difference is marked only when that stays below 1%.

Distributions come from scipy and the correction from statsmodels; nothing is hand-rolled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

CONFIDENCE = 0.95
SIGNIFICANCE = 0.01  # the level at which a table marks a difference


@dataclass(frozen=True)
class Accuracy:
    """An accuracy in percent with its 95% Wilson score interval, from ``correct`` of ``n``."""

    correct: int
    n: int

    @property
    def value(self) -> float:
        return 100.0 * self.correct / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)


class RowTest(Protocol):
    """What the table reads from a test of one row against another."""

    delta: float  # the row minus the other, in points
    seed_aware: bool  # whether retraining noise is counted

    @property
    def p(self) -> float: ...


@dataclass(frozen=True)
class PairedTest:
    """McNemar's exact test of a row against the baseline on the same videos (one seed: the
    videos' noise only).

    ``row_only``: videos the row gets right and the baseline wrong; ``baseline_only`` the
    reverse; ``delta`` the difference of accuracies in points.
    """

    row_only: int
    baseline_only: int
    n: int
    seed_aware = False

    @property
    def delta(self) -> float:
        return 100.0 * (self.row_only - self.baseline_only) / self.n if self.n else float("nan")

    @property
    def p(self) -> float:
        return mcnemar_exact(self.row_only, self.baseline_only)

    @property
    def significant(self) -> bool:
        return self.p < SIGNIFICANCE


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n``, in percent ((nan, nan) when ``n`` is 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan")
    interval = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return 100.0 * interval.low, 100.0 * interval.high


def mcnemar_exact(row_only: int, baseline_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2
    (1.0 when there are none: no evidence of a difference)."""
    from scipy.stats import binomtest

    discordant = int(row_only) + int(baseline_only)
    if discordant == 0:
        return 1.0
    return float(binomtest(int(row_only), discordant, 0.5, alternative="two-sided").pvalue)


def paired_test(row_correct: Sequence[bool], baseline_correct: Sequence[bool]) -> PairedTest:
    """Compare two rows' per-video outcomes, given in the same video order."""
    row, base = np.asarray(row_correct, bool), np.asarray(baseline_correct, bool)
    if row.shape != base.shape:
        raise ValueError(f"paired outcomes need the same videos: {row.shape} vs {base.shape}")
    return PairedTest(int((row & ~base).sum()), int((~row & base).sum()), int(row.size))


@dataclass(frozen=True)
class SeedSpread:
    """The variance of one seed's accuracy around its row's mean, pooled over a table's rows.

    ``variance`` is in squared fractions; ``df`` is the seeds counted minus the rows that have
    any (a row with one seed adds nothing). ``df == 0``: nothing measured retraining.
    """

    variance: float
    df: int

    @classmethod
    def pooled(cls, rows: Sequence[np.ndarray]) -> "SeedSpread":
        """From each row's (seeds, videos) matrix of right (True) and wrong outcomes."""
        squares, df = 0.0, 0
        for outcomes in rows:
            accuracies = np.asarray(outcomes, float).mean(axis=1)
            squares += float(((accuracies - accuracies.mean()) ** 2).sum())
            df += len(accuracies) - 1
        return cls(squares / df if df else float("nan"), df)


@dataclass(frozen=True)
class SeedTest:
    """A t-test of a row against another that counts retraining: ``delta`` (points) over its
    standard error ``se`` (points), with the pooled seed spread's ``df``."""

    delta: float
    se: float
    df: int
    seed_aware = True

    @property
    def p(self) -> float:
        from scipy.stats import t

        if self.se == 0:
            return 1.0 if self.delta == 0 else 0.0
        return float(2 * t.sf(abs(self.delta) / self.se, self.df))


def _video_variance(values: np.ndarray) -> float:
    """The variance of a mean over videos of per-video values (the test set's own noise)."""
    return float(values.var(ddof=1) / len(values)) if len(values) > 1 else 0.0


def seed_interval(outcomes: np.ndarray, spread: SeedSpread,
                  confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval (percent) of a row's mean accuracy over its seeds, counting retraining and the
    test videos; never narrower than the Wilson interval of the pooled (seed, video) outcomes,
    which would be the answer if retraining added no noise at all."""
    from scipy.stats import t

    outcomes = np.asarray(outcomes, float)
    seeds = outcomes.shape[0]
    se = np.sqrt(spread.variance / seeds + _video_variance(outcomes.mean(axis=0)))
    half = float(t.ppf(0.5 + confidence / 2, spread.df)) * se
    mean = outcomes.mean()
    low, high = wilson_interval(int(outcomes.sum()), outcomes.size, confidence)
    return min(100.0 * (mean - half), low), max(100.0 * (mean + half), high)


def seed_test(row: np.ndarray, other: np.ndarray, spread: SeedSpread) -> SeedTest:
    """``row`` against ``other``, each a (seeds, videos) matrix over the same videos in the same
    order. Seeds are independent training runs (seed k of one row has nothing to do with seed
    k of another), videos are shared: the video part is the variance of the per-video
    differences of the seed-averaged outcomes."""
    row, other = np.asarray(row, float), np.asarray(other, float)
    if row.shape[1] != other.shape[1]:
        raise ValueError(f"paired outcomes need the same videos: {row.shape[1]} vs {other.shape[1]}")
    variance = spread.variance * (1 / row.shape[0] + 1 / other.shape[0])
    variance += _video_variance(row.mean(axis=0) - other.mean(axis=0))
    return SeedTest(100.0 * (row.mean() - other.mean()), 100.0 * float(np.sqrt(variance)), spread.df)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate)."""
    from statsmodels.stats.multitest import multipletests

    if not len(pvalues):
        return []
    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


def format_p(p: float | None, adjusted: float | None = None) -> str:
    """``0.003`` or, with its Holm-adjusted companion, ``0.003 (0.02)``; ``*`` marks an adjusted
    (or, alone, a raw) p below the table's significance level; ``<1e-6``; empty when missing."""
    if p is None or np.isnan(p):
        return ""
    text = _p_text(p)
    if adjusted is not None:
        text += f" ({_p_text(adjusted)})"
    return text + ("*" if (p if adjusted is None else adjusted) < SIGNIFICANCE else "")


def _p_text(p: float) -> str:
    return "<1e-6" if p < 1e-6 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
