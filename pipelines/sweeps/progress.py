"""The sweep on the console: a line when a trial starts, finishes or fails, with the trials done,
running and pending and the sweep's ETA.

:class:`SweepProgress` is a Ray Tune callback; it runs on the sweep's driver, where Tune runs
(Tune's own status tables are off unless ``--verbose``). Each trial's epochs are on the console
already, from its Ray Train controller (``training.reporting.EpochReporter``, labelled with
:func:`trial_label`) with the epoch in flight as a progress bar; here they only feed the ETA.
"""
from __future__ import annotations

import logging
import time

from ray.tune import Callback

log = logging.getLogger(__name__)


def trial_label(row: str, seed: int, seeds: int) -> str:
    """What the console calls a trial: its row, and its seed when rows repeat."""
    return f"{row} seed{seed}" if seeds > 1 else row


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h" if hours else "") + f"{rest // 60}m{rest % 60:02d}s"


class SweepProgress(Callback):
    """Lines for a person following a sweep of ``trials`` trials; ``epochs`` maps each row to its
    epoch count (the ETA counts a trial's epochs as its share of its work).

    Tune keeps its callbacks with the sweep's state, so a resumed sweep gets a fresh one
    (``sweep.make_tuner``) and everything here starts again in :meth:`setup`.
    """

    def __init__(self, name: str, trials: int, epochs: dict[str, int], seeds: int) -> None:
        self.name, self.trials, self.epochs, self.seeds = name, trials, epochs, seeds
        self.start = time.monotonic()
        self.work: dict[str, float] = {}  # trial id -> share of its work done in this invocation

    def setup(self, **info) -> None:
        self.start, self.work = time.monotonic(), {}

    def label(self, trial) -> str:
        return trial_label(str(trial.config.get("row")), int(trial.config.get("seed", 0)), self.seeds)

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
        log.info("%s  started  (%s)", self.label(trial), self.status(trials, trial, "RUNNING"))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if "epoch" in result and not result.get("reused"):
            epochs = self.epochs.get(str(trial.config.get("row")), 1)
            self.work[trial.trial_id] = min(1.0, (int(result["epoch"]) + 1) / max(1, epochs))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        if result.get("reused"):
            self.work.pop(trial.trial_id, None)
            what = "finished before this run (its MLflow run reused)"
        else:
            self.work[trial.trial_id] = 1.0
            what = "finished"
        top1 = result.get("test_top1")
        log.info("%s  %s%s  (%s)", self.label(trial), what, "" if top1 is None else f": test top-1 {top1:.1f}",
                 self.status(trials, trial, "TERMINATED"))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        log.error("%s  failed; the same command again retries it  (%s)", self.label(trial),
                  self.status(trials, trial, "ERROR"))
