"""How sure a results table is: confidence intervals on accuracies, paired tests between rows.

Every row of a sweep is tested on the same videos, so two rows are compared video by video
(a paired design): only the videos one row gets right and the other gets wrong carry
information about which row is better. McNemar's exact test asks whether those discordant
videos split evenly, as they would if the two rows were equally accurate. An accuracy alone
gets a Wilson score interval, which stays inside [0, 100] and keeps its coverage at the
small counts and extreme accuracies a benchmark's class families produce.

Both come from scipy's binomial test; nothing here computes a distribution by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class PairedTest:
    """McNemar's exact test of a row against the baseline on the same videos.

    ``row_only``: videos the row gets right and the baseline wrong; ``baseline_only`` the
    reverse; ``delta`` the difference of accuracies in points.
    """

    row_only: int
    baseline_only: int
    n: int

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


def format_p(p: float | None) -> str:
    """``0.003*`` (marked below the table's significance level), ``<1e-6*``, or empty."""
    if p is None or np.isnan(p):
        return ""
    text = "<1e-6" if p < 1e-6 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
    return text + ("*" if p < SIGNIFICANCE else "")
