"""A results table's rows: one grid row's logged metrics and, per seed, its per-video test outcomes.

The outcomes are what every statistic of the table is computed from; a row hands them out as
(seed, video) pairs (one seed's McNemar test) or as a (seeds, videos) matrix (the seed-aware
statistics), over all test videos or over one of the built-in benchmark's class families.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean

import numpy as np

from ..training.metrics import TEST_TOP1, TEST_TOP5, family_top1
from ..training.predictions import VideoPredictions


@dataclass(frozen=True)
class Reported:
    """One accuracy a table reports, when its rows' videos have it."""

    title: str
    prefix: str  # its CSV columns' prefix and its key in the table
    subset: str  # the videos it counts: ``all`` or a class family of the built-in benchmark
    k: int  # top-k
    logged: str  # the metric a run logs for it (read when a row has no per-video predictions)


ACCURACIES = (
    Reported("test top-1", TEST_TOP1, "all", 1, TEST_TOP1),
    Reported("test top-5", TEST_TOP5, "all", 5, TEST_TOP5),
    Reported("family A top-1", "family_A", "A", 1, family_top1("family A")),
    Reported("family B top-1", "family_B", "B", 1, family_top1("family B")),
)
REPORTED = {a.prefix: a for a in ACCURACIES}
TESTED = (TEST_TOP1, "family_A", "family_B")  # accuracies compared with the baseline


@dataclass
class ResultRow:
    label: str
    model: str
    params: float | None  # parameters
    gmacs: float | None  # per clip at the sweep's clip size
    values: dict[str, list[float]]  # logged metric -> one value per finished seed
    paper_top1: float | None = None
    predictions: dict[int, VideoPredictions] = field(default_factory=dict)  # seed -> per-video test outcomes
    time_symmetric: bool | None = None  # its output is the same for a clip and the clip reversed

    def mean(self, metric: str) -> float | None:
        values = self.values.get(metric) or []
        return mean(values) if values else None

    def outcomes(self, subset: str, k: int) -> dict[tuple[int, str], bool]:
        """(seed, video) -> right or wrong, over the videos of ``subset`` (``all`` or a family)."""
        result = {}
        for seed, predictions in self.predictions.items():
            chosen = _subset_mask(predictions, subset)
            for video, right, keep in zip(predictions.videos, predictions.correct(k), chosen):
                if keep:
                    result[(seed, video)] = bool(right)
        return result

    def matrix(self, subset: str, k: int) -> tuple[list[str], np.ndarray] | None:
        """(videos, outcomes): the videos of ``subset`` every seed was tested on, and a (seeds,
        videos) matrix of right (True) and wrong; None without predictions on that subset."""
        chosen = {seed: _subset_mask(p, subset) for seed, p in self.predictions.items()}
        per_seed = [dict(zip(np.asarray(p.videos)[chosen[s]].tolist(), p.correct(k)[chosen[s]]))
                    for s, p in sorted(self.predictions.items()) if chosen[s].any()]
        if not per_seed:
            return None
        videos = [v for v in per_seed[0] if all(v in seed for seed in per_seed[1:])]
        return videos, np.array([[seed[v] for v in videos] for seed in per_seed], bool)

    def seeds(self) -> int:
        """How many seeds of this row finished."""
        return max((len(v) for v in self.values.values()), default=0)

    def per_seed(self, subset: str, k: int) -> list[float]:
        """The accuracy of each seed, in percent (what mean +- sd is taken over)."""
        values = []
        for predictions in self.predictions.values():
            chosen = _subset_mask(predictions, subset)
            if chosen.any():
                values.append(100.0 * predictions.correct(k)[chosen].mean())
        return values


def _subset_mask(predictions: VideoPredictions, subset: str) -> np.ndarray:
    if subset == "all":
        return np.ones(len(predictions), bool)
    family = benchmark_families(predictions.classes)
    if family is None:
        return np.zeros(len(predictions), bool)
    return np.array([family[predictions.classes[label]] == subset for label in predictions.labels], bool)


def benchmark_families(classes: list[str]) -> dict[str, str] | None:
    """Class name -> family ("A" or "B") on the built-in benchmark; None on any other dataset."""
    from ..data.synthetic import CLASSES

    return {c.name: c.family for c in CLASSES} if list(classes) == [c.name for c in CLASSES] else None
