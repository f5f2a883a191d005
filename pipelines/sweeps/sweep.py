"""An ablation sweep on Ray Tune: one trial per grid row (x seed), each a full Ray Train run.

The Ray 2.60 (Train V2) pattern: every Tune trial is a small driver function that launches
a ``TorchTrainer``. The trial drivers hold no CPU (on a small machine a CPU held by a driver
is a CPU its own training or decoding workers wait for, and the sweep hangs). A trial
reports to Tune once, when its row is trained and tested: its epochs are in its MLflow child
run, where the console's ETA reads them (``progress.LoggedEpochs``). Forwarding every epoch
to Tune (``TuneReportCallback``) would add a queue actor per trial, polled by the trial
driver five times a second, and nothing in an ablation grid reads per-epoch Tune results.

MLflow gets one parent run per sweep and one child run per trial. Names make reruns safe:
the sweep's name finds its Tune state, its parent run and, per trial, the Ray Train run and
the child run, so an interrupted sweep resumes where it stopped and duplicates nothing.
"""
from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import storage as storage_rules
from ..config import ExperimentConfig
from .grids import Grid, GridRow

if TYPE_CHECKING:
    from .table import ResultsTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepContext:
    """What every trial needs to know about its sweep (sent to the trial drivers once)."""

    name: str
    grid: Grid
    base: dict  # ExperimentConfig.to_dict(), with absolute storage and data paths
    seeds: int
    parent_run_id: str
    cpus_per_trial: float | None  # the CPU share a trial sizes its workers to; None: the cluster's
    cache: Any = None  # training.driver.DatasetCache: the dataset decoded once for every trial


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


def trial_name(sweep: str, row: GridRow, seed: int, seeds: int) -> str:
    """``receptive_field-laptop.3x3x3`` (``.seed1`` appended when rows repeat); the Ray Train
    run and the MLflow child run share it, which is what makes a rerun resume them."""
    return f"{sweep}.{row.slug}" + (f".seed{seed}" if seeds > 1 else "")


def trial_config(context: SweepContext, row: GridRow, seed: int) -> ExperimentConfig:
    base = ExperimentConfig.from_dict(context.base, source=f"sweep {context.name}")
    overrides = row.experiment_overrides()
    overrides["run.name"] = trial_name(context.name, row, seed, context.seeds)
    if seed:
        overrides["run.seed"] = base.run.seed + seed
        overrides["data.clip.seed"] = base.data.clip.seed + seed
    return base.with_overrides(overrides, source=f"{context.grid.source} grid {context.grid.name!r}, row {row.label!r}")


def run_trial(params: dict, context: SweepContext) -> None:
    """One Tune trial: train and test one row, or report the row's finished MLflow run again."""
    import ray
    from mlflow.tracking import MlflowClient
    from ray import tune

    from ..tracking import find_run, get_experiment_id, tracking_uri
    from ..training.driver import fit
    from ..training.pause_points import pause_point
    from .progress import trial_label

    row = next(r for r in context.grid.rows if r.label == params["row"])
    seed = int(params["seed"])
    config = trial_config(context, row, seed)
    client = MlflowClient(tracking_uri=tracking_uri(config.run.storage))
    experiment_id = get_experiment_id(client, config.run.experiment, config.run.storage)
    done = find_run(client, experiment_id, config.run.name, context.parent_run_id)
    if done is not None and done.info.status == "FINISHED" and "test_top1" in done.data.metrics:
        tune.report({**done.data.metrics, "reused": 1})  # finished before an interruption: not trained again
        return
    tags = {"grid": context.grid.name, "row": row.label, "seed": str(seed), "sweep": context.name,
            "driver_node_id": ray.get_runtime_context().get_node_id()}  # this trial driver's node
    pause_point(config.run.name, "start")
    result = fit(config, run_test=True, parent_run_id=context.parent_run_id, extra_tags=tags,
                 cluster_cpus=context.cpus_per_trial, cache=context.cache,
                 label=trial_label(row.label, seed, context.seeds))
    tune.report({**result.metrics, **(result.test or {}), "reused": 0})


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def open_parent(grid: Grid, base: ExperimentConfig, name: str, seeds: int):
    """The sweep's MLflow parent run (reopened on a rerun): ``(client, experiment id, run id, resumed)``."""
    from mlflow.tracking import MlflowClient

    from ..tracking import flatten, get_experiment_id, log_params, open_run, tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(base.run.storage))
    experiment_id = get_experiment_id(client, base.run.experiment, base.run.storage)
    tags = {"grid": grid.name, "preset": base.preset, "dataset": base.data.path, "git_commit": git_commit(),
            "sweep": "parent"}
    parent_run_id, resumed = open_run(client, experiment_id, name, tags)
    log_params(client, parent_run_id, {"grid": grid.name, "grid.source": grid.source, "seeds": seeds,
                                       "rows": "; ".join(r.label for r in grid.rows), **flatten(base.to_dict())})
    return client, experiment_id, parent_run_id, resumed


def make_tuner(grid: Grid, base: ExperimentConfig, context: SweepContext, concurrent: int, experiment_id: str,
               verbose: bool = False):
    """A new Tuner over the grid, or the interrupted one of this sweep's name, restored; quiet (our
    :class:`~.progress.SweepProgress` lines) unless ``verbose`` (Tune's status tables)."""
    from ray import tune

    from ..tracking import tracking_uri
    from .progress import LoggedEpochs, SweepProgress

    # A trial driver holds no CPU; Tune wants some non-zero resource per trial, hence a byte of memory.
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), {"cpu": 0, "memory": 1})
    folder = storage_rules.join(base.run.storage, context.name)
    epochs = {r.label: int(r.experiment_overrides().get("optim.epochs", base.optim.epochs)) for r in grid.rows}
    logged = LoggedEpochs(tracking_uri(base.run.storage), experiment_id, context.parent_run_id)
    callbacks = [SweepProgress(context.name, len(grid.rows) * context.seeds, epochs, context.seeds, logged)]
    if tune.Tuner.can_restore(folder):
        tuner = tune.Tuner.restore(folder, trainable, resume_errored=True)
        run_config = tuner._local_tuner.get_run_config()  # restored as saved: this invocation's console instead
        run_config.verbose, run_config.callbacks = (None if verbose else 0), callbacks
        return tuner
    return tune.Tuner(
        trainable,
        param_space={"row": tune.grid_search([r.label for r in grid.rows]),
                     "seed": tune.grid_search(list(range(context.seeds)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=context.name, storage_path=base.run.storage, callbacks=callbacks,
                                  verbose=None if verbose else 0,
                                  failure_config=tune.FailureConfig(max_failures=base.run.max_failures)),
    )


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
        client.log_metric(parent_run_id, "best_test_top1", best[1], step=step)
        client.set_tag(parent_run_id, "verdict", table.verdict())
    client.set_tag(parent_run_id, "mlflow.note.content", markdown(table))


def run_sweep(grid: Grid, base: ExperimentConfig, *, name: str, seeds: int = 1,
              max_concurrent: int | None = None, out: str | Path | None = None, verbose: bool = False) -> SweepResult:
    """Run (or resume) every row of ``grid`` x ``seeds`` on the connected Ray cluster (Tune's own
    status tables on the console only with ``verbose``).

    Writes the results table (Markdown, CSV) and a bar chart to ``out`` (default: the
    sweep's folder under ``run.storage``), logs them to the parent MLflow run and returns them.
    """
    from ..cluster import plan_concurrency
    from ..tracking import log_metrics
    from .presentation import write_results
    from .results import collect_results, note_training_share, step_seconds

    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: expected at least 1")
    started = time.time()
    base = absolute_paths(base)
    client, experiment_id, parent_run_id, resumed = open_parent(grid, base, name, seeds)
    trials = len(grid.rows) * seeds
    cache = decode_once(base)
    concurrent, share = plan_concurrency(base, trials, max_concurrent, cached=cache is not None)
    context = SweepContext(name, grid, base.to_dict(), seeds, parent_run_id, share, cache)
    log.info("sweep %s: grid %s (%d rows x %d seed(s)), %d at a time%s; MLflow run %s", name, grid.name,
             len(grid.rows), seeds, concurrent, ", resuming" if resumed else "", parent_run_id)
    try:
        grid_results = make_tuner(grid, base, context, concurrent, experiment_id, verbose).fit()
        complete = not grid_results.errors and len(grid_results) == trials and all(
            r.metrics and "test_top1" in r.metrics for r in grid_results)
    except BaseException:
        client.set_terminated(parent_run_id, "KILLED")  # rerunning the same command resumes it
        raise
    table = collect_results(client, experiment_id, parent_run_id, grid, base)
    reused = sum(1 for r in grid_results if (r.metrics or {}).get("reused"))
    timing = note_training_share(table, step_seconds(client, experiment_id, parent_run_id), time.time() - started,
                                 concurrent, reused)
    invocation = len(client.get_metric_history(parent_run_id, "sweep_wall_s"))  # a rerun adds a step, never repeats one
    log_metrics(client, parent_run_id, timing, step=invocation)
    folder = Path(out) if out else storage_rules.local_folder(base.run.storage) / name / "results"
    artifacts = write_results(table, folder)
    for path in artifacts:
        client.log_artifact(parent_run_id, str(path), artifact_path="results")
    summarize_parent(client, parent_run_id, table, invocation)
    # An interrupted sweep (Ctrl-C) ends KILLED, one with failed trials FAILED; rerunning resumes either.
    client.set_terminated(parent_run_id, "FINISHED" if complete else "FAILED" if grid_results.errors else "KILLED")
    return SweepResult(name, parent_run_id, complete, table, artifacts)
