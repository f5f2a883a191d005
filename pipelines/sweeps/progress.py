"""The sweep on the console: a line when a trial starts, finishes or fails, with the trials done,
running and pending and the sweep's ETA.

:class:`SweepProgress` is a Ray Tune callback; it runs on the sweep's driver, where Tune runs
(Tune's own status tables are off unless ``--verbose``). Each trial's epochs are on the console
already, from its Ray Train controller (``training.reporting.EpochReporter``, labelled with
:func:`trial_label`) with the epoch in flight as a progress bar, and in its MLflow child run;
here they only feed the ETA, read from MLflow (:class:`LoggedEpochs`) when a line is printed.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from ray.tune import Callback

from ..training.metrics import TEST_TOP1

log = logging.getLogger(__name__)


def trial_label(row: str, seed: int, repeats: bool) -> str:
    """What the console calls a trial: its row, and its seed when rows repeat."""
    return f"{row} seed{seed}" if repeats else row


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h" if hours else "") + f"{rest // 60}m{rest % 60:02d}s"


@dataclass(frozen=True)
class LoggedEpochs:
    """How many epochs each trial of a sweep has logged to its MLflow child run, by (row, seed).

    The sweep's driver asks only when it prints a line (a few times per trial), so trials need
    no channel of their own to it: the epochs they log for the record are the progress.
    """

    tracking_uri: str
    experiment_id: str
    parent_run_id: str

    def __call__(self) -> dict[tuple[str, int], int]:
        from mlflow.tracking import MlflowClient

        runs = MlflowClient(self.tracking_uri).search_runs(
            [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'")
        return {(r.data.tags["row"], int(r.data.tags.get("seed", 0))): int(r.data.metrics["epoch"]) + 1
                for r in runs if "row" in r.data.tags and "epoch" in r.data.metrics}


class SweepProgress(Callback):
    """Lines for a person following a sweep of ``trials`` trials; ``epochs`` maps each row to its
    epoch count (the ETA counts a trial's epochs as its share of its work), and ``logged`` tells
    the epochs each trial has logged so far (:class:`LoggedEpochs`; without it a running trial
    counts as no work done until it finishes).

    Tune keeps its callbacks with the sweep's state, so a resumed sweep gets a fresh one
    (``sweep.make_tuner``) and everything here starts again in :meth:`setup`.
    """

    def __init__(self, name: str, trials: int, epochs: dict[str, int], repeats: bool,
                 logged: Callable[[], dict[tuple[str, int], int]] | None = None) -> None:
        self.name, self.trials, self.epochs, self.repeats, self.logged = name, trials, epochs, repeats, logged
        self.start = time.monotonic()
        self.work: dict[str, float] = {}  # trial id -> share of its work done in this invocation
        self.before: dict[str, int] = {}  # trial id -> epochs it had logged when this invocation started it

    def setup(self, **info) -> None:
        self.start, self.work, self.before = time.monotonic(), {}, {}

    def label(self, trial) -> str:
        return trial_label(str(trial.config.get("row")), int(trial.config.get("seed", 0)), self.repeats)

    def count_logged(self, trials: list, started=None) -> None:
        """Each running trial's share of its epochs logged in this invocation (``started``: the
        trial starting now, whose epochs logged so far came from an earlier invocation)."""
        if self.logged is None:
            return
        try:
            logged = self.logged()
        except Exception as error:  # the store busy or gone: the line goes out without the progress
            log.debug("could not read the trials' logged epochs: %s", error)
            return
        for trial in trials:
            row, seed = str(trial.config.get("row")), int(trial.config.get("seed", 0))
            done = logged.get((row, seed), 0)
            if trial is started:
                self.before[trial.trial_id] = done
            elif trial.status == "RUNNING" and trial.trial_id in self.before:
                share = (done - self.before[trial.trial_id]) / max(1, self.epochs.get(row, 1))
                self.work[trial.trial_id] = min(1.0, max(self.work.get(trial.trial_id, 0.0), share))

    def status(self, trials: list, trial=None, now: str = "") -> str:
        """Trials done, running, pending (and failed), elapsed and ETA; ``trial`` counted as ``now``
        (Tune calls a callback before it sets the trial's new status)."""
        states = [now if t is trial else t.status for t in trials]
        count = {s: states.count(s) for s in ("TERMINATED", "RUNNING", "ERROR")}
        pending = self.trials - sum(count.values())
        elapsed = time.monotonic() - self.start
        line = (f"sweep {self.name}: {count['TERMINATED']}/{self.trials} done, {count['RUNNING']} running, "
                f"{pending} pending" + (f", {count['ERROR']} failed" if count["ERROR"] else "")
                + f"; {duration(elapsed)} elapsed")
        done = sum(self.work.values())
        left = self.trials - count["TERMINATED"] - count["ERROR"] - sum(
            self.work.get(t.trial_id, 0.0) for t, state in zip(trials, states) if state == "RUNNING")
        if done > 0 and left > 0:
            line += f", ETA {duration(left * elapsed / done)}"
        return line

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.count_logged(trials, started=trial)
        log.info("%s  started  (%s)", self.label(trial), self.status(trials, trial, "RUNNING"))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.count_logged(trials)
        result = trial.last_result or {}
        if result.get("reused"):
            self.work.pop(trial.trial_id, None)
            what = "finished before this run (its MLflow run reused)"
        else:
            self.work[trial.trial_id] = 1.0
            what = "finished"
        top1 = result.get(TEST_TOP1)
        log.info("%s  %s%s  (%s)", self.label(trial), what, "" if top1 is None else f": test top-1 {top1:.1f}",
                 self.status(trials, trial, "TERMINATED"))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.count_logged(trials)
        log.error("%s  failed; the same command again retries it  (%s)", self.label(trial),
                  self.status(trials, trial, "ERROR"))
