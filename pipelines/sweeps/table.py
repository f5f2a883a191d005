"""A sweep's results table: each accuracy with its interval, each row tested against the
baseline and against the best row, every p-value Holm-adjusted, and a verdict per row.

Accuracies are computed from the per-video test predictions every trial logs, so the table,
its intervals and its tests all rest on the same videos. Rows repeated over seeds show mean
+- sd over seeds, and their intervals and tests count retraining (``statistics``): the
seed-to-seed spread is pooled over the table's rows. With one seed per row the intervals and
tests cover the test videos only, and every verdict is ``unresolved``. Rows without
predictions (a run from before they were logged) fall back to their logged metrics, without
statistics.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev

import numpy as np

from ..training.metrics import TEST, TEST_TOP1, TRAIN_CLIPS_PER_S, VAL_TOP1
from .rows import ACCURACIES, REPORTED, TESTED, ResultRow
from .statistics import (
    CONFIDENCE,
    SIGNIFICANCE,
    Accuracy,
    RowTest,
    SeedSpread,
    holm,
    paired_test,
    seed_interval,
    seed_test,
)


@dataclass
class Cell:
    """One accuracy of one row: mean (and sd over seeds), its interval, and its test against the
    baseline with the Holm-adjusted p of that test."""

    value: float | None
    sd: float | None = None
    accuracy: Accuracy | None = None  # the pooled (seed, video) outcomes
    interval: tuple[float, float] | None = None  # seed-aware with several seeds, else Wilson
    test: RowTest | None = None
    p_holm: float | None = None


VERDICTS = ("best", "tied with best", "below best", "unresolved")


@dataclass
class ResultsTable:
    title: str
    baseline: str  # the row label deltas are measured against
    rows: list[ResultRow]
    clip: str = ""  # e.g. "8x48x48", the size GMACs are counted at
    chance: float | None = None  # top-1 of a uniform guess, in percent
    notes: list[str] = field(default_factory=list)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def base_row(self) -> ResultRow | None:
        return next((r for r in self.rows if r.label == self.baseline), None)

    def spread(self, prefix: str = TEST_TOP1) -> SeedSpread:
        """The seed-to-seed spread of accuracy ``prefix``, pooled over every row with predictions."""
        return self._remember(("spread", prefix), lambda: SeedSpread.pooled(
            [m[1] for row in self.rows if (m := row.matrix(*_subset(prefix))) is not None]))

    def cell(self, row: ResultRow, prefix: str) -> Cell | None:
        """Accuracy ``prefix`` (see :data:`ACCURACIES`) of ``row``; None when the row lacks it."""
        cell = self._raw_cell(row, prefix)
        if cell is not None and cell.test is not None:
            cell.p_holm = self.adjusted()[_pair_key(row.label, self.baseline, prefix)]
        return cell

    def _raw_cell(self, row: ResultRow, prefix: str) -> Cell | None:
        return self._remember(("cell", row.label, prefix), lambda: self._compute_cell(row, prefix))

    def _compute_cell(self, row: ResultRow, prefix: str) -> Cell | None:
        subset, k = _subset(prefix)
        mine = row.matrix(subset, k)
        if mine is None:
            logged = row.values.get(REPORTED[prefix].logged)
            return Cell(mean(logged)) if logged else None
        seeds = row.per_seed(subset, k)
        accuracy = Accuracy(int(mine[1].sum()), mine[1].size)
        spread = self.spread(prefix)
        interval = seed_interval(mine[1], spread) if spread.df else accuracy.interval
        cell = Cell(mean(seeds), stdev(seeds) if len(seeds) > 1 else None, accuracy, interval)
        base = self.base_row()
        if base is not None and base is not row and prefix in TESTED:
            cell.test = self.compare(row, base, prefix)
        return cell

    def compare(self, row: ResultRow, other: ResultRow, prefix: str = TEST_TOP1) -> RowTest | None:
        """``row`` against ``other`` on their shared videos: seed-aware when the table measured the
        seed spread, McNemar's exact test on the (seed k, video) pairs otherwise."""
        subset, k = _subset(prefix)
        spread = self.spread(prefix)
        if spread.df:
            mine, theirs = row.matrix(subset, k), other.matrix(subset, k)
            if mine is None or theirs is None:
                return None
            shared = sorted(set(mine[0]) & set(theirs[0]))
            if not shared:
                return None
            return seed_test(_columns(mine, shared), _columns(theirs, shared), spread)
        mine, theirs = row.outcomes(subset, k), other.outcomes(subset, k)
        shared = sorted(set(mine) & set(theirs))
        return paired_test([mine[v] for v in shared], [theirs[v] for v in shared]) if shared else None

    def best_row(self) -> ResultRow | None:
        """The row with the highest mean test top-1 (the first of equals)."""
        scored = [(cell.value, -i, row) for i, row in enumerate(self.rows)
                  if (cell := self._raw_cell(row, TEST_TOP1)) is not None and cell.value is not None]
        return max(scored, key=lambda s: s[:2])[2] if scored else None

    def best(self) -> tuple[str, float] | None:
        """The row with the highest test top-1 and that accuracy (a sweep's one-line summary)."""
        row = self.best_row()
        return (row.label, self._raw_cell(row, TEST_TOP1).value) if row is not None else None

    def vs_best(self, row: ResultRow) -> tuple[RowTest, float] | None:
        """``row``'s test against the best row (test top-1) and its Holm-adjusted p; None for the best."""
        best = self.best_row()
        if best is None or best is row:
            return None
        test = self._remember(("vs_best", row.label), lambda: self.compare(row, best))
        return (test, self.adjusted()[_pair_key(row.label, best.label, TEST_TOP1)]) if test else None

    def family(self) -> dict[tuple, RowTest]:
        """Every test the table prints, once per pair of rows and accuracy: the family Holm's
        adjustment runs over."""
        tests = {}
        base, best = self.base_row(), self.best_row()
        for row in self.rows:
            for prefix in TESTED:
                cell = self._raw_cell(row, prefix)
                if cell is not None and cell.test is not None:
                    tests[_pair_key(row.label, base.label, prefix)] = cell.test
            if best is not None and row is not best:
                test = self._remember(("vs_best", row.label), lambda: self.compare(row, best))
                if test is not None:
                    tests.setdefault(_pair_key(row.label, best.label, TEST_TOP1), test)
        return tests

    def adjusted(self) -> dict[tuple, float]:
        """Holm-adjusted p of every test in :meth:`family`."""
        def compute():
            tests = self.family()
            return dict(zip(tests, holm([t.p for t in tests.values()])))
        return self._remember(("adjusted",), compute)

    def verdicts(self) -> dict[str, str]:
        """Row label -> one of :data:`VERDICTS` (empty for a row with no result). Only a table that
        measured the seed spread can say more than ``unresolved``: one training run per row
        cannot separate rows within training noise."""
        best = self.best_row()
        seed_aware = self.spread().df > 0
        verdicts = {}
        for row in self.rows:
            if self._raw_cell(row, TEST_TOP1) is None:
                verdicts[row.label] = ""
            elif not seed_aware or row.matrix("all", 1) is None:
                verdicts[row.label] = "unresolved"
            elif row is best:
                verdicts[row.label] = "best"
            else:
                found = self.vs_best(row)
                below = found is not None and found[1] < SIGNIFICANCE
                verdicts[row.label] = "below best" if below else "tied with best"
        return verdicts

    def verdict(self) -> str:
        """The grid's answer in one sentence (the console, results.md and the MLflow parent's tag)."""
        verdicts = self.verdicts()
        named = {v: [label for label, mine in verdicts.items() if mine == v] for v in VERDICTS}
        if not self.spread().df:
            return ("unresolved: one seed per row cannot separate rows within training noise; the intervals "
                    "and p-values cover the test videos only (rerun with --seeds 3 or --seeds auto)")
        counts = sorted({len(r.predictions) for r in self.rows if r.predictions})
        seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        parts = [f"best: {', '.join(named['best'])}"]
        parts += [f"{title}: {', '.join(named[v])}" for title, v in
                  (("tied with it", "tied with best"), ("below", "below best"), ("unresolved", "unresolved"))
                  if named[v]]
        return "; ".join(parts) + f" ({seeds} seeds, Holm-adjusted p < {SIGNIFICANCE:g})"

    def present(self) -> list[tuple[str, str]]:
        """The accuracies at least one row has, as (title, CSV prefix)."""
        return [(a.title, a.prefix) for a in ACCURACIES
                if any(self._raw_cell(row, a.prefix) is not None for row in self.rows)]

    def values(self) -> list[dict[str, object]]:
        """The table as numbers, one dict per row: what ``results.csv`` holds (accuracies in %)."""
        records = []
        verdicts = self.verdicts()
        for row in self.rows:
            record: dict[str, object] = {"row": row.label, "model": row.model,
                                         "params_m": _round(row.params / 1e6 if row.params else None, 3),
                                         "gmacs": _round(row.gmacs, 4)}
            for _, prefix in self.present():
                record.update(_cell_values(prefix, self.cell(row, prefix)))
            found = self.vs_best(row)
            record["vs_best_delta"] = _round(found[0].delta if found else None, 2)
            record["vs_best_p"] = _p(found[0].p if found else None)
            record["vs_best_p_holm"] = _p(found[1] if found else None)
            record["verdict"] = verdicts[row.label]
            record["time_symmetric"] = row.time_symmetric
            record[VAL_TOP1] = _round(row.mean(VAL_TOP1), 2)
            record[TRAIN_CLIPS_PER_S] = _round(row.mean(TRAIN_CLIPS_PER_S), 1)
            record["test_videos"] = len(next(iter(row.predictions.values()))) if row.predictions else None
            record["seeds"] = row.seeds()
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
        spread = self.spread()
        notes = []
        if self.chance is not None:
            notes.append(f"chance: {self.chance:.1f}% top-1")
        if n and spread.df:
            notes.append(
                f"with several seeds a value is mean ± sd over seeds; [low, high]: {CONFIDENCE:.0%} interval that "
                f"counts retraining and the {n} test videos (the seed-to-seed spread pooled over the table's rows, "
                f"sd {100 * spread.variance ** 0.5:.1f} points, {spread.df} degrees of freedom; never narrower than "
                f"the Wilson interval of the pooled outcomes); Δ and p: the row minus {self.baseline}, a t-test "
                "with the same two parts of the noise")
        elif n:
            notes.append(f"one seed per row: [low, high] is a {CONFIDENCE:.0%} Wilson score interval over the {n} "
                         "test videos and p a two-sided exact McNemar test against " + self.baseline + " on the "
                         "videos exactly one of the two gets right: both cover the test videos, not retraining "
                         "(another training run can move a row by more than its interval)")
        if n:
            notes.append(f"p (Holm): each p with its Holm-adjusted companion over the table's {len(self.family())} "
                         f"tests; * marks an adjusted p < {SIGNIFICANCE}; Δ best and p best: the row against the "
                         "row with the highest mean test top-1")
            notes.append(f"verdict: {self.verdict()}")
        if any(self._raw_cell(row, "family_A") is not None for row in self.rows):
            notes.append("family A holds reversal pairs (each class is the other played backwards): a model "
                         "whose output does not change when its clip is reversed scores a clip and its reversal "
                         "alike, so it can get at most one of each pair right: 50% is the ceiling of a "
                         "time-symmetric row on family A; family B (order without direction) has no such bound")
        return notes + list(self.notes)

    def _remember(self, key: tuple, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _subset(prefix: str) -> tuple[str, int]:
    return REPORTED[prefix].subset, REPORTED[prefix].k


def _pair_key(label: str, other: str, prefix: str) -> tuple:
    return frozenset((label, other)), prefix


def _columns(matrix: tuple[list[str], np.ndarray], videos: list[str]) -> np.ndarray:
    index = {video: i for i, video in enumerate(matrix[0])}
    return matrix[1][:, [index[v] for v in videos]]


def _cell_values(prefix: str, cell: Cell | None) -> dict[str, object]:
    """The CSV columns of one accuracy: ``test_top1``, ``test_top1_low``, ... ``p``, ``p_holm``."""
    name = prefix if prefix.startswith(TEST) else f"{prefix}_top1"
    low, high = cell.interval if cell and cell.interval else (None, None)
    values = {name: _round(cell.value if cell else None, 2), f"{prefix}_low": _round(low, 2),
              f"{prefix}_high": _round(high, 2), f"{prefix}_sd": _round(cell.sd if cell else None, 2)}
    if prefix in TESTED:
        lead = "" if prefix == TEST_TOP1 else f"{prefix}_"
        test = cell.test if cell else None
        values[f"{lead}delta"] = _round(test.delta if test else None, 2)
        values[f"{lead}p"] = _p(test.p if test else None)
        values[f"{lead}p_holm"] = _p(cell.p_holm if test else None)
    return values


def _p(value: float | None) -> float | None:
    return float(f"{value:.4g}") if value is not None else None


def _round(value: float | None, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)
