"""A sweep's results table: each accuracy with its interval, each row tested against the baseline.

Accuracies are computed from the per-video test predictions every trial logs, so the table,
its intervals and its paired tests all rest on the same videos; rows repeated over seeds
show mean +- sd over seeds, and their intervals and tests pool the (seed, video) outcomes
(seed k of a row is paired with seed k of the baseline). Rows without predictions (a run
from before they were logged) fall back to their logged metrics, without statistics.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev

import numpy as np

from ..training.predictions import VideoPredictions
from .statistics import CONFIDENCE, SIGNIFICANCE, Accuracy, PairedTest, paired_test

# (title, CSV prefix, subset, top-k): the accuracies each row reports, when its videos have them.
ACCURACIES = (
    ("test top-1", "test_top1", "all", 1),
    ("test top-5", "test_top5", "all", 5),
    ("family A top-1", "family_A", "A", 1),
    ("family B top-1", "family_B", "B", 1),
)
TESTED = ("test_top1", "family_A", "family_B")  # accuracies compared with the baseline


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


@dataclass
class Cell:
    """One accuracy of one row: mean (and sd over seeds), interval, and the test against the baseline."""

    value: float | None
    sd: float | None = None
    accuracy: Accuracy | None = None  # pooled over seeds
    test: PairedTest | None = None


@dataclass
class ResultsTable:
    title: str
    baseline: str  # the row label deltas are measured against
    rows: list[ResultRow]
    clip: str = ""  # e.g. "8x48x48", the size GMACs are counted at
    chance: float | None = None  # top-1 of a uniform guess, in percent
    notes: list[str] = field(default_factory=list)

    def base_row(self) -> ResultRow | None:
        return next((r for r in self.rows if r.label == self.baseline), None)

    def cell(self, row: ResultRow, prefix: str) -> Cell | None:
        """Accuracy ``prefix`` (see :data:`ACCURACIES`) of ``row``; None when the row lacks it."""
        _, _, subset, k = next(a for a in ACCURACIES if a[1] == prefix)
        mine = row.outcomes(subset, k)
        if not mine:
            logged = row.values.get({"test_top1": "test_top1", "test_top5": "test_top5"}.get(
                prefix, f"test_top1_{prefix}"))
            return Cell(mean(logged)) if logged else None
        seeds = row.per_seed(subset, k)
        accuracy = Accuracy(sum(mine.values()), len(mine))
        cell = Cell(mean(seeds), stdev(seeds) if len(seeds) > 1 else None, accuracy)
        base = self.base_row()
        if base is not None and base is not row and prefix in TESTED:
            theirs = base.outcomes(subset, k)
            shared = sorted(set(mine) & set(theirs))
            if shared:
                cell.test = paired_test([mine[v] for v in shared], [theirs[v] for v in shared])
        return cell

    def best(self) -> tuple[str, float] | None:
        """The row with the highest test top-1 and that accuracy (a sweep's one-line summary)."""
        scored = [(cell.value, row.label) for row in self.rows
                  if (cell := self.cell(row, "test_top1")) is not None and cell.value is not None]
        return (max(scored)[1], max(scored)[0]) if scored else None

    def present(self) -> list[tuple[str, str]]:
        """The accuracies at least one row has, as (title, CSV prefix)."""
        return [(title, prefix) for title, prefix, _, _ in ACCURACIES
                if any(self.cell(row, prefix) is not None for row in self.rows)]

    def values(self) -> list[dict[str, object]]:
        """The table as numbers, one dict per row: what ``results.csv`` holds (accuracies in %)."""
        records = []
        for row in self.rows:
            record: dict[str, object] = {"row": row.label, "model": row.model,
                                         "params_m": _round(row.params / 1e6 if row.params else None, 3),
                                         "gmacs": _round(row.gmacs, 4)}
            for _, prefix in self.present():
                record.update(_cell_values(prefix, self.cell(row, prefix)))
            record["time_symmetric"] = row.time_symmetric
            record["val_top1"] = _round(row.mean("val_top1"), 2)
            record["train_clips_per_s"] = _round(row.mean("train_clips_per_s"), 1)
            record["test_videos"] = len(next(iter(row.predictions.values()))) if row.predictions else None
            record["seeds"] = max((len(v) for v in row.values.values()), default=0)
            record["paper_top1"] = row.paper_top1
            records.append(record)
        return records

    def write_csv(self, path: Path) -> Path:
        records = self.values()
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["row"])
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
        return path

    def footnotes(self) -> list[str]:
        n = max((len(p) for row in self.rows for p in row.predictions.values()), default=0)
        seeds = max((len(row.predictions) for row in self.rows), default=1)
        notes = []
        if self.chance is not None:
            notes.append(f"chance: {self.chance:.1f}% top-1")
        if n:
            pooled = " (pooled over seeds: seed k of a row is paired with seed k of the baseline)" if seeds > 1 else ""
            notes.append(f"[low, high]: {CONFIDENCE:.0%} Wilson score interval over the {n} test videos{pooled}; "
                         f"Δ and p: the row minus {self.baseline} on the same videos, p from a two-sided exact "
                         f"McNemar test on the videos exactly one of the two gets right; * marks p < {SIGNIFICANCE}"
                         + ("; with several seeds a value is mean ± sd over seeds" if seeds > 1 else ""))
        if any(self.cell(row, "family_A") is not None for row in self.rows):
            notes.append("family A holds reversal pairs (each class is the other played backwards): a model "
                         "whose output does not change when its clip is reversed scores a clip and its reversal "
                         "alike, so it can get at most one of each pair right: 50% is the ceiling of a "
                         "time-symmetric row on family A; family B (order without direction) has no such bound")
        return notes + list(self.notes)


def _cell_values(prefix: str, cell: Cell | None) -> dict[str, object]:
    """The CSV columns of one accuracy: ``test_top1``, ``test_top1_low``, ... ``p``."""
    name = prefix if prefix.startswith("test_") else f"{prefix}_top1"
    low, high = cell.accuracy.interval if cell and cell.accuracy else (None, None)
    values = {name: _round(cell.value if cell else None, 2), f"{prefix}_low": _round(low, 2),
              f"{prefix}_high": _round(high, 2), f"{prefix}_sd": _round(cell.sd if cell else None, 2)}
    if prefix in TESTED:
        delta_key, p_key = ("delta", "p") if prefix == "test_top1" else (f"{prefix}_delta", f"{prefix}_p")
        test = cell.test if cell else None
        values[delta_key] = _round(test.delta if test else None, 2)
        values[p_key] = float(f"{test.p:.4g}") if test else None
    return values


def _round(value: float | None, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)
