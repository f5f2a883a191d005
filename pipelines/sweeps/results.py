"""A sweep's results as the paper lays them out: one line per row, read back from MLflow.

The child runs in MLflow are the source of truth (a resumed sweep's earlier trials are
there too); rows repeated over seeds show mean +- standard deviation.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev

from ..config import ExperimentConfig
from .grids import Grid

# (column, MLflow metric); family columns appear only when the runs have them.
METRIC_COLUMNS = (
    ("val top-1", "val_top1"),
    ("test top-1", "test_top1"),
    ("test top-5", "test_top5"),
    ("family A top-1", "test_top1_family_A"),
    ("family B top-1", "test_top1_family_B"),
    ("train clips/s", "train_clips_per_s"),
)


@dataclass
class ResultRow:
    label: str
    model: str
    params: float | None  # parameters
    gmacs: float | None  # per clip at the sweep's clip size
    values: dict[str, list[float]]  # metric -> one value per finished seed
    paper_top1: float | None = None

    def mean(self, metric: str) -> float | None:
        values = self.values.get(metric) or []
        return mean(values) if values else None


@dataclass
class ResultsTable:
    title: str
    baseline: str  # the row label deltas are measured against
    rows: list[ResultRow]
    clip: str = ""  # e.g. "8x48x48", the size GMACs are counted at
    chance: float | None = None  # top-1 of a uniform guess, in percent
    notes: list[str] = field(default_factory=list)

    def columns(self) -> list[tuple[str, str]]:
        present = {m for row in self.rows for m in row.values}
        return [(title, metric) for title, metric in METRIC_COLUMNS if metric in present]

    def delta(self, row: ResultRow, metric: str = "test_top1") -> float | None:
        base = next((r for r in self.rows if r.label == self.baseline), None)
        if base is None or row.mean(metric) is None or base.mean(metric) is None:
            return None
        return row.mean(metric) - base.mean(metric)

    def records(self) -> list[dict[str, str]]:
        """The table as text cells, one dict per row (shared by Markdown, CSV and the console)."""
        records = []
        for row in self.rows:
            record = {"row": row.label, "model": row.model,
                      "params (M)": _fmt(row.params / 1e6 if row.params else None, 2),
                      f"GMACs{' @ ' + self.clip if self.clip else ''}": _fmt(row.gmacs, 3)}
            for title, metric in self.columns():
                record[title] = _fmt_seeds(row.values.get(metric) or [], 1)
                if metric == "test_top1":
                    delta = self.delta(row)
                    record[f"delta vs {self.baseline}"] = "" if delta is None else f"{delta:+.1f}"
            record["seeds"] = str(max((len(v) for v in row.values.values()), default=0))
            record["paper K400 top-1"] = _fmt(row.paper_top1, 1)
            records.append(record)
        return records

    def markdown(self) -> str:
        records = self.records()
        header = list(records[0]) if records else ["row"]
        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" if h in ("row", "model") else "---:" for h in header) + "|")
        lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in records]
        notes = list(self.notes)
        if self.chance is not None:
            notes.insert(0, f"chance: {self.chance:.1f}% top-1")
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        return "\n".join(lines)

    def write_csv(self, path: Path) -> Path:
        records = self.records()
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["row"])
            writer.writeheader()
            writer.writerows(records)
        return path

    def plot(self, path: Path) -> Path:
        """Grouped bars: test top-1 (and each class family's, on the built-in benchmark) per row."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        series = [(t, m) for t, m in self.columns() if m.startswith("test_top1")] or \
                 [(t, m) for t, m in self.columns() if m == "val_top1"]
        labels = [r.label for r in self.rows]
        x = np.arange(len(labels))
        width = 0.8 / max(1, len(series))
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.2))
        for i, (title, metric) in enumerate(series):
            means = [r.mean(metric) if r.mean(metric) is not None else 0.0 for r in self.rows]
            errors = [stdev(v) if len(v := r.values.get(metric) or []) > 1 else 0.0 for r in self.rows]
            ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, label=title,
                   yerr=errors if any(errors) else None, capsize=3)  # spread bars only when seeds repeat
        if self.chance is not None:
            ax.axhline(self.chance, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(self.title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _fmt_seeds(values: list[float], digits: int) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{mean(values):.{digits}f} ± {stdev(values):.{digits}f}"


def collect_results(client, experiment_id: str, parent_run_id: str, grid: Grid,
                    base: ExperimentConfig) -> ResultsTable:
    """The table of a sweep from its finished MLflow child runs (rows in the grid's order)."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=5000)
    finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("grid") == grid.name]
    rows = []
    for grid_row in grid.rows:
        mine = [r for r in finished if r.data.tags.get("row") == grid_row.label]
        values: dict[str, list[float]] = {}
        for run in mine:
            for _, metric in METRIC_COLUMNS:
                if metric in run.data.metrics:
                    values.setdefault(metric, []).append(run.data.metrics[metric])
        params = _param(mine, "model.params")
        rows.append(ResultRow(grid_row.label, grid_row.model, params, _param(mine, "model.gmacs"), values,
                              grid_row.paper_top1))
    clip = base.data.clip
    table = ResultsTable(grid.title, grid.baseline.label, rows, f"{clip.frames}x{clip.crop}x{clip.crop}",
                         _chance(base))
    missing = [r.label for r in rows if not r.values]
    if missing:
        table.notes.append(f"not finished (rerun the same command to resume): {', '.join(missing)}")
    return table


def step_seconds(client, experiment_id: str, parent_run_id: str) -> float:
    """Seconds the sweep's finished trials spent in training steps (``train_step_s`` over every epoch)."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=5000)
    return sum(m.value for run in runs if run.info.status == "FINISHED"
               for m in client.get_metric_history(run.info.run_id, "train_step_s"))


def note_training_share(table: ResultsTable, steps: float, wall: float, concurrent: int, reused: int) -> dict:
    """Add to the table's notes how much of the sweep's wall time its trials spent training; returns
    the figures (for the parent MLflow run)."""
    share = steps / wall if wall > 0 else 0.0
    table.notes.append(f"time: {wall:.0f} s wall, {steps:.0f} s in training steps summed over trials "
                       f"({share:.0%} of the wall time; {concurrent} trial(s) at a time"
                       + (f"; {reused} trial(s) finished before and reused" if reused else "") + ")")
    return {"sweep_wall_s": wall, "train_step_s_total": steps, "training_share": share}


def _param(runs, key: str) -> float | None:
    for run in runs:
        if key in run.data.params:
            try:
                return float(run.data.params[key])
            except ValueError:
                return None
    return None


def _chance(base: ExperimentConfig) -> float | None:
    classes = Path(base.data.path) / "classes.txt"
    if not classes.exists():
        return None
    count = sum(1 for line in classes.read_text().splitlines() if line.strip())
    return 100.0 / count if count else None


def write_results(table: ResultsTable, folder: str | Path) -> list[Path]:
    """results.md, results.csv and results.png in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / "results.md"
    markdown.write_text(table.markdown() + "\n")
    return [markdown, table.write_csv(folder / "results.csv"), table.plot(folder / "results.png")]
