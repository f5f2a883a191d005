"""A sweep's results read back from MLflow: one row per grid row, with every seed's test predictions.

The child runs in MLflow are the source of truth (a resumed sweep's earlier trials are
there too): their metrics, parameters and the per-video predictions each logged as an
artifact, from which :mod:`.table` computes intervals and paired tests.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..config import ExperimentConfig
from ..training.metrics import TRAIN_CLIPS_PER_S, TRAIN_STEP_S, VAL_TOP1
from ..training.predictions import FILE_NAME as PREDICTIONS_FILE
from ..training.predictions import VideoPredictions
from .grids import Grid, GridRow
from .rows import ACCURACIES
from .table import ResultRow, ResultsTable

log = logging.getLogger(__name__)

LOGGED_METRICS = (VAL_TOP1, *(a.logged for a in ACCURACIES), TRAIN_CLIPS_PER_S)


def collect_results(client, experiment_id: str, parent_run_id: str, grid: Grid,
                    base: ExperimentConfig, seeds: dict[str, int] | None = None) -> ResultsTable:
    """The table of a sweep from its finished MLflow child runs (rows in the grid's order);
    ``seeds``, when given, keeps each row's first ``seeds[row]`` seeds only (a race's rounds so far)."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=5000)
    finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("grid") == grid.name
                and (seeds is None or int(r.data.tags.get("seed", 0)) < seeds.get(r.data.tags.get("row"), 0))]
    rows = []
    for grid_row in grid.rows:
        mine = [r for r in finished if r.data.tags.get("row") == grid_row.label]
        values: dict[str, list[float]] = {}
        for run in mine:
            for metric in LOGGED_METRICS:
                if metric in run.data.metrics:
                    values.setdefault(metric, []).append(run.data.metrics[metric])
        params = _param(mine, "model.params")
        rows.append(ResultRow(grid_row.label, grid_row.model, params, _param(mine, "model.gmacs"), values,
                              grid_row.paper_top1, read_predictions(client, mine), time_symmetric(base, grid_row)))
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
               for m in client.get_metric_history(run.info.run_id, TRAIN_STEP_S))


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


def time_symmetric(base: ExperimentConfig, row: GridRow) -> bool:
    """Whether the row's model gives a clip and its reversal the same output (checked exactly, in
    float64, on random weights): such a row is capped at 50% on the benchmark's reversal pairs."""
    import smallbig

    config = base.with_overrides(row.experiment_overrides())
    return smallbig.check_reversal(config.model.name, frames=config.data.clip.frames, **config.model.options).invariant


def read_predictions(client, runs) -> dict[int, VideoPredictions]:
    """Each run's per-video test predictions (its ``test/predictions.csv`` artifact), by seed."""
    found = {}
    for run in runs:
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = client.download_artifacts(run.info.run_id, f"test/{PREDICTIONS_FILE}", folder)
            except Exception as error:  # noqa: BLE001 - MLflow raises several kinds for a missing file
                log.warning("run %s has no per-video predictions (%s); its row gets no intervals",
                            run.info.run_name, type(error).__name__)
                continue
            found[int(run.data.tags.get("seed", 0))] = VideoPredictions.read_csv(path)
    return found
