"""An ablation sweep on Ray Tune: every grid row trained and tested (per seed), tabulated, tracked.

MLflow gets one parent run per sweep and one child run per trial. Names make reruns safe:
the sweep's name finds its Tune state, its parent run and, per trial, the Ray Train run and
the child run, so an interrupted sweep resumes where it stopped and duplicates nothing.
How the trials run is :mod:`.rounds`; how many seeds each row gets, :mod:`.race`.
"""
from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import storage as storage_rules
from ..config import ExperimentConfig
from ..training.metrics import TEST_TOP1
from .grids import Grid
from .race import SeedPlan
from .rounds import Round, RoundRunner, run_race
from .trials import SweepContext

if TYPE_CHECKING:
    from .table import ResultsTable

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    name: str
    parent_run_id: str
    complete: bool  # every trial finished
    table: "ResultsTable"
    artifacts: list[Path]

    @property
    def markdown(self) -> str:
        from .presentation import markdown

        return markdown(self.table)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def open_parent(grid: Grid, base: ExperimentConfig, name: str, plan: SeedPlan):
    """The sweep's MLflow parent run (reopened on a rerun): ``(client, experiment id, run id, resumed)``."""
    from mlflow.tracking import MlflowClient

    from ..tracking import flatten, get_experiment_id, log_params, open_run, tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(base.run.storage))
    experiment_id = get_experiment_id(client, base.run.experiment, base.run.storage)
    tags = {"grid": grid.name, "preset": base.preset, "dataset": base.data.path, "git_commit": git_commit(),
            "sweep": "parent"}
    parent_run_id, resumed = open_run(client, experiment_id, name, tags)
    seeds = {"seeds": "auto", "budget": plan.budget} if plan.racing else {"seeds": plan.fixed}
    log_params(client, parent_run_id, {"grid": grid.name, "grid.source": grid.source, **seeds,
                                       "rows": "; ".join(r.label for r in grid.rows), **flatten(base.to_dict())})
    return client, experiment_id, parent_run_id, resumed


def decode_once(base: ExperimentConfig):
    """The dataset decoded into the object store once for the whole sweep (None when ``data.cache``
    says to stream); this process owns it, so it lives exactly as long as the sweep."""
    import ray

    from ..cluster import worker_resources
    from ..training.driver import cache_dataset

    cpus = float(ray.cluster_resources().get("CPU", 1))
    return cache_dataset(base, Path(base.data.path), worker_resources(base, cpus, cached=True)[1])


def absolute_paths(base: ExperimentConfig) -> ExperimentConfig:
    """Trial drivers run in folders of their own: storage and data become absolute, and the
    built-in benchmark is written once, here, rather than by every trial."""
    from ..data.folders import resolve_data

    storage = storage_rules.resolve(base.run.storage)
    root = resolve_data(base.data.path, storage, base.data.synthetic)
    return base.with_overrides({"run.storage": storage, "data.path": str(root)})


def summarize_parent(client, parent_run_id: str, table: "ResultsTable", step: int) -> None:
    """What the collapsed sweep says in the MLflow UI: the best row and its test top-1 (a tag and
    a metric), the grid's verdict in one sentence (a tag), and the whole results table as the
    run's description."""
    from .presentation import markdown

    best = table.best()
    if best is not None:
        client.set_tag(parent_run_id, "best_row", best[0])
        client.log_metric(parent_run_id, "best_" + TEST_TOP1, best[1], step=step)
        client.set_tag(parent_run_id, "verdict", table.verdict())
    client.set_tag(parent_run_id, "mlflow.note.content", markdown(table))


def run_sweep(grid: Grid, base: ExperimentConfig, *, name: str, seeds: int | str = 1, budget: int | None = None,
              max_concurrent: int | None = None, out: str | Path | None = None, verbose: bool = False) -> SweepResult:
    """Run (or resume) every row of ``grid`` on the connected Ray cluster, ``seeds`` times each or,
    with ``seeds="auto"``, as a race of at most ``budget`` trials (:mod:`.race`); Tune's own status
    tables on the console only with ``verbose``.

    Writes the results table (Markdown, CSV) and a bar chart to ``out`` (default: the
    sweep's folder under ``run.storage``), logs them to the parent MLflow run and returns them.
    """
    from .presentation import write_results
    from .results import collect_results

    plan = SeedPlan.parse(seeds, budget, len(grid.rows))
    started = time.time()
    base = absolute_paths(base)
    client, experiment_id, parent_run_id, resumed = open_parent(grid, base, name, plan)
    context = SweepContext(name, grid, base.to_dict(), plan.repeats, parent_run_id, None, decode_once(base))
    log.info("sweep %s: grid %s (%d rows, %s)%s; MLflow run %s", name, grid.name, len(grid.rows), plan.describe(),
             ", resuming" if resumed else "", parent_run_id)
    runner = RoundRunner(base, context, experiment_id, max_concurrent, verbose)
    try:
        if plan.racing:
            seeds_of, race = run_race(runner, client, grid, plan.budget)
        else:
            seeds_of, race = {r.label: plan.fixed for r in grid.rows}, None
            runner.run(Round(grid.rows, tuple(range(plan.fixed)), name))
    except BaseException:
        client.set_terminated(parent_run_id, "KILLED")  # rerunning the same command resumes it
        raise
    table = collect_results(client, experiment_id, parent_run_id, grid, base, seeds_of)
    if race is not None:
        table.notes.append(f"race: {race}")
        client.set_tag(parent_run_id, "race", race)
    record_timing(client, experiment_id, parent_run_id, table, time.time() - started, runner)
    folder = Path(out) if out else storage_rules.local_folder(base.run.storage) / name / "results"
    artifacts = write_results(table, folder)
    for path in artifacts:
        client.log_artifact(parent_run_id, str(path), artifact_path="results")
    summarize_parent(client, parent_run_id, table, len(client.get_metric_history(parent_run_id, "sweep_wall_s")) - 1)
    # An interrupted sweep (Ctrl-C) ends KILLED, one with failed trials FAILED; rerunning resumes either.
    client.set_terminated(parent_run_id, "FINISHED" if runner.complete else "FAILED" if runner.errors else "KILLED")
    return SweepResult(name, parent_run_id, runner.complete, table, artifacts)


def record_timing(client, experiment_id: str, parent_run_id: str, table: "ResultsTable", wall: float,
                  runner: RoundRunner) -> None:
    """The sweep's wall time and its trials' training share: in the table's notes and, as one
    more step per invocation (never a repeated one), on the parent run."""
    from ..tracking import log_metrics
    from .results import note_training_share, step_seconds

    timing = note_training_share(table, step_seconds(client, experiment_id, parent_run_id), wall,
                                 runner.concurrent, runner.reused)
    log_metrics(client, parent_run_id, timing, step=len(client.get_metric_history(parent_run_id, "sweep_wall_s")))
