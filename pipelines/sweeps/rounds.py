"""A sweep's trials run in rounds, each one Ray Tune experiment: all of them at once for a fixed
number of seeds, or round after round for a race (:mod:`.race`).

The Ray 2.60 (Train V2) pattern: every Tune trial is a small driver function that launches
a ``TorchTrainer`` (:func:`.trials.run_trial`). The trial drivers hold no CPU (on a small
machine a CPU held by a driver is a CPU its own training or decoding workers wait for, and
the sweep hangs). A trial reports to Tune once, when its row is trained and tested: its epochs
are in its MLflow child run, where the console's ETA reads them (``progress.LoggedEpochs``).
Forwarding every epoch to Tune (``TuneReportCallback``) would add a queue actor per trial,
polled by the trial driver five times a second, and nothing in an ablation grid reads
per-epoch Tune results.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from .. import ray_private as private_ray
from .. import storage as storage_rules
from ..config import ExperimentConfig
from ..training.metrics import TEST_TOP1
from .grids import Grid, GridRow
from .race import FIRST_SEEDS, decide
from .trials import SweepContext, run_trial

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """Some rows x some seeds of a sweep, run as one Ray Tune experiment called ``tune_name``."""

    rows: tuple[GridRow, ...]
    seeds: tuple[int, ...]
    tune_name: str

    @property
    def trials(self) -> int:
        return len(self.rows) * len(self.seeds)


def make_tuner(round_: Round, base: ExperimentConfig, context: SweepContext, concurrent: int, experiment_id: str,
               verbose: bool = False):
    """A new Tuner over the round's trials, or the interrupted one of its name, restored; quiet (our
    :class:`~.progress.SweepProgress` lines) unless ``verbose`` (Tune's status tables)."""
    from ray import tune

    from ..tracking import tracking_uri
    from .progress import LoggedEpochs, SweepProgress

    # A trial driver holds no CPU; Tune wants some non-zero resource per trial, hence a byte of memory.
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), {"cpu": 0, "memory": 1})
    folder = storage_rules.join(base.run.storage, round_.tune_name)
    epochs = {r.label: int(r.experiment_overrides().get("optim.epochs", base.optim.epochs)) for r in round_.rows}
    logged = LoggedEpochs(tracking_uri(base.run.storage), experiment_id, context.parent_run_id)
    callbacks = [SweepProgress(context.name, round_.trials, epochs, context.repeats, logged)]
    if tune.Tuner.can_restore(folder):
        tuner = tune.Tuner.restore(folder, trainable, resume_errored=True)
        private_ray.set_restored_run_config(tuner, verbose=None if verbose else 0, callbacks=callbacks)
        return tuner
    return tune.Tuner(
        trainable,
        param_space={"row": tune.grid_search([r.label for r in round_.rows]),
                     "seed": tune.grid_search(list(round_.seeds))},
        # A finished trial's driver process runs the next trial: its imports (torch, Ray Train,
        # MLflow) are not paid again, about 5 s a trial on 2 cores. Every trial asks for the same.
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name=round_.tune_name, storage_path=base.run.storage, callbacks=callbacks,
                                  verbose=None if verbose else 0,
                                  failure_config=tune.FailureConfig(max_failures=base.run.max_failures)),
    )


class RoundRunner:
    """Runs a sweep's rounds one after another on Ray Tune and keeps their tally."""

    def __init__(self, base: ExperimentConfig, context: SweepContext, experiment_id: str,
                 max_concurrent: int | None, verbose: bool) -> None:
        self.base, self.context, self.experiment_id = base, context, experiment_id
        self.max_concurrent, self.verbose = max_concurrent, verbose
        self.complete, self.errors, self.reused, self.concurrent = True, False, 0, 1

    def run(self, round_: Round) -> bool:
        """Train and test every trial of ``round_`` (reusing the finished ones); whether all finished."""
        from ..cluster import plan_concurrency

        self.concurrent, share = plan_concurrency(self.base, round_.trials, self.max_concurrent,
                                                  cached=self.context.cache is not None)
        context = dataclasses.replace(self.context, cpus_per_trial=share)
        log.info("sweep %s: %d trial(s), %d at a time: %s x seed %s", context.name, round_.trials, self.concurrent,
                 ", ".join(r.label for r in round_.rows), ", ".join(map(str, round_.seeds)))
        results = make_tuner(round_, self.base, context, self.concurrent, self.experiment_id, self.verbose).fit()
        finished = not results.errors and len(results) == round_.trials and all(
            r.metrics and TEST_TOP1 in r.metrics for r in results)
        self.reused += sum(1 for r in results if (r.metrics or {}).get("reused"))
        self.complete, self.errors = self.complete and finished, self.errors or bool(results.errors)
        return finished


def run_race(runner: RoundRunner, client, grid: Grid, budget: int) -> tuple[dict[str, int], str]:
    """Rounds until one row is separated from the rest or the budget is spent (:mod:`.race`);
    returns each row's seeds and how the race ended."""
    from .results import collect_results

    rows = {r.label: r for r in grid.rows}
    seeds_of = {label: FIRST_SEEDS for label in rows}
    round_ = Round(grid.rows, tuple(range(FIRST_SEEDS)), runner.context.name)
    number = 1
    while runner.run(round_):
        table = collect_results(client, runner.experiment_id, runner.context.parent_run_id, grid, runner.base,
                                seeds_of)
        decision = decide(table, seeds_of, budget)
        log.info("race after round %d: %s", number, table.verdict())
        if decision.ended:
            log.info("race over: %s", decision.ended)
            return seeds_of, f"{decision.ended} ({number} round(s))"
        seed = seeds_of[decision.contenders[0]]
        for label in decision.contenders:
            seeds_of[label] += 1
        number += 1
        round_ = Round(tuple(rows[c] for c in decision.contenders), (seed,), f"{runner.context.name}.round{number}")
    return seeds_of, f"stopped in round {number} (run the same command again to resume it)"
