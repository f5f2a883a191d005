"""One trial of a sweep: a grid row and a seed, trained and tested on Ray Train from a Tune trial driver.

A trial's name (``<sweep>.<row>[.seed<k>]``) is its Ray Train run's and its MLflow child
run's, which is what lets a rerun of the sweep find and resume, or reuse, it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ExperimentConfig
from ..training.metrics import TEST_TOP1
from .grids import Grid, GridRow


@dataclass(frozen=True)
class SweepContext:
    """What every trial needs to know about its sweep (sent to the trial drivers once)."""

    name: str
    grid: Grid
    base: dict  # ExperimentConfig.to_dict(), with absolute storage and data paths
    repeats: bool  # rows train more than one seed: trials are named by seed
    parent_run_id: str
    cpus_per_trial: float | None  # the CPU share a trial sizes its workers to; None: the cluster's
    cache: Any = None  # training.driver.DatasetCache: the dataset decoded once for every trial


def trial_name(sweep: str, row: GridRow, seed: int, repeats: bool) -> str:
    """``receptive_field-laptop.3x3x3`` (``.seed1`` appended when rows repeat); the Ray Train
    run and the MLflow child run share it, which is what makes a rerun resume them."""
    return f"{sweep}.{row.slug}" + (f".seed{seed}" if repeats else "")


def trial_config(context: SweepContext, row: GridRow, seed: int) -> ExperimentConfig:
    base = ExperimentConfig.from_dict(context.base, source=f"sweep {context.name}")
    overrides = row.experiment_overrides()
    overrides["run.name"] = trial_name(context.name, row, seed, context.repeats)
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
    if done is not None and done.info.status == "FINISHED" and TEST_TOP1 in done.data.metrics:
        tune.report({**done.data.metrics, "reused": 1})  # finished before an interruption: not trained again
        return
    tags = {"grid": context.grid.name, "row": row.label, "seed": str(seed), "sweep": context.name,
            "driver_node_id": ray.get_runtime_context().get_node_id()}  # this trial driver's node
    pause_point(config.run.name, "start")
    result = fit(config, run_test=True, parent_run_id=context.parent_run_id, extra_tags=tags,
                 cluster_cpus=context.cpus_per_trial, cache=context.cache,
                 label=trial_label(row.label, seed, context.repeats))
    tune.report({**result.metrics, **(result.test or {}), "reused": 0})
