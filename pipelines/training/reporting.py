"""What a training run tells MLflow and a person: each registered epoch, and the epoch in flight.

Ray Train calls a ``UserCallback``'s ``after_report`` on the controller once every worker has
reported an epoch and the checkpoint of that report is registered, and never for a report
lost with a dying worker. Logging there (:class:`EpochReporter`), rather than from rank 0 after
``ray.train.report`` returns, is what makes each epoch's metrics reach MLflow exactly once
whenever a worker dies: an epoch is logged if and only if Ray will resume after it. A whole
driver killed between the registration and the logging leaves one registered epoch unlogged;
the next run of the same name logs it before training (:meth:`EpochReporter.catch_up`). The
same callback logs the epoch's console line.

During an epoch rank 0 logs its progress (:class:`EpochProgress`, JSON records of
``cluster.PROGRESS_LOGGER``, at most one a second); on the driver, where
``cluster.route_worker_output`` hands them over, :class:`ProgressBars` draws them as tqdm bars
(clips/s and ETA), or, when the console is not a terminal, as a line now and then.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.train import UserCallback

from ..cluster import PROGRESS_LOGGER, console_logging
from .metrics import LOSS, LR, TOP1, TOP5, TRAIN, TRAIN_CLIPS_PER_S, VAL, VAL_TOP1
from .pause_points import pause_point

if TYPE_CHECKING:
    from .inputs import InputPlan

NODE_ID = "node_id"  # a string each rank adds to its report: where it trained

log = logging.getLogger(__name__)


class EpochReporter(UserCallback):
    """Logs rank 0's epoch metrics to the MLflow run ``run_id`` at step = epoch, and logs the epoch
    line (prefixed with ``label``, a sweep's row); ``run`` is the run's name (its pause points)."""

    def __init__(self, tracking_uri: str, run_id: str, epochs: int, label: str = "", run: str = "run") -> None:
        self.tracking_uri, self.run_id, self.epochs, self.label, self.run = tracking_uri, run_id, epochs, label, run
        self._nodes: list[str] | None = None

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        from mlflow.tracking import MlflowClient

        console_logging()  # on the controller: its stdout reaches the driver
        client = MlflowClient(tracking_uri=self.tracking_uri)
        nodes = [str(m.get(NODE_ID, "")) for m in metrics]
        if nodes != self._nodes:  # a restarted worker group may train elsewhere: describe this attempt
            client.set_tag(self.run_id, "train_node_ids", ",".join(nodes))
            self._nodes = nodes
        numbers = numeric(metrics[0])
        pause_point(self.run, f"epoch{int(numbers['epoch'])}.registered")
        log_epoch(client, self.run_id, numbers)
        log.info("%s", epoch_line(numbers, self.epochs, self.label))

    def catch_up(self, registered: list[dict[str, Any]]) -> list[int]:
        """Log the registered epochs MLflow has not seen: a driver killed between Ray's registration
        of an epoch and :meth:`after_report` leaves one behind. ``registered`` holds the metrics of
        the checkpoints Ray kept (``ray.train.Result.from_path(...).best_checkpoints``), which
        the resumed run will not train again. Returns the epochs logged now."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        seen = {int(m.value) for m in client.get_metric_history(self.run_id, "epoch")}
        missing = [numeric(m) for m in registered if "epoch" in m and int(m["epoch"]) not in seen]
        for numbers in sorted(missing, key=lambda m: m["epoch"]):
            log_epoch(client, self.run_id, numbers)
            log.info("%s  (logged on resume)", epoch_line(numbers, self.epochs, self.label))
        return [int(m["epoch"]) for m in missing]


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_epoch(client, run_id: str, numbers: dict[str, float]) -> None:
    from ..tracking import log_metrics

    log_metrics(client, run_id, numbers, step=int(numbers["epoch"]))


def epoch_line(m: dict[str, float], epochs: int, label: str = "") -> str:
    return (f"{label + '  ' if label else ''}epoch {int(m['epoch']) + 1}/{epochs}  loss {m[TRAIN + LOSS]:.3f}  "
            f"val top-1 {m[VAL_TOP1]:.1f}  top-5 {m[VAL + TOP5]:.1f}  train top-1 {m[TRAIN + TOP1]:.1f}  "
            f"{m[TRAIN_CLIPS_PER_S]:.1f} clips/s  lr {m[LR]:.4f}")


def epoch_title(label: str, epoch: int, epochs: int) -> str:
    return f"{label + '  ' if label else ''}epoch {epoch + 1}/{epochs}"


class EpochProgress:
    """Rank 0's clips done in one epoch, logged for the driver's bar at most every ``every_s`` seconds."""

    def __init__(self, run: str, label: str, epoch: int, epochs: int, total: int, every_s: float = 1.0) -> None:
        self.state = {"run": run, "title": epoch_title(label, epoch, epochs), "n": 0, "total": total,
                      "loss": None, "done": False}
        self.every_s, self.last = every_s, 0.0
        self._send()

    def update(self, clips: int, loss: float) -> None:
        self.state.update(n=clips, loss=loss)
        if time.monotonic() - self.last >= self.every_s:
            self._send()

    def close(self) -> None:
        self.state["done"] = True
        self._send()

    def _send(self) -> None:
        self.last = time.monotonic()
        logging.getLogger(PROGRESS_LOGGER).info("%s", json.dumps(self.state))


class ProgressBars(logging.Handler):
    """On the driver: a tqdm bar per training run in flight, drawn from its :class:`EpochProgress`
    records (clips/s and ETA by tqdm); on a console that is not a terminal, a line every ``every_s``."""

    def __init__(self, stream=None, every_s: float = 30.0) -> None:
        super().__init__()
        self.stream, self.every_s = stream, every_s
        self.bars: dict[str, Any] = {}
        self.lines: dict[str, tuple[str, float, float]] = {}  # run -> (title, start, last line)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            state = json.loads(record.getMessage())
            stream = self.stream or sys.stderr
            if stream.isatty():
                self._bar(state, stream)
            else:
                self._line(state)
        except Exception:  # a display must never stop a run
            self.handleError(record)

    def _bar(self, state: dict, stream) -> None:
        from tqdm import tqdm

        bar = self.bars.get(state["run"])
        if bar is not None and (state["done"] or bar.desc != state["title"]):
            self.bars.pop(state["run"]).close()
            bar = None
        if state["done"]:
            return
        if bar is None:
            bar = self.bars[state["run"]] = tqdm(total=state["total"], desc=state["title"], unit="clip",
                                                 initial=state["n"], leave=False, dynamic_ncols=True, file=stream,
                                                 mininterval=0)  # a record a second at most
        if state["loss"] is not None:
            bar.set_postfix(loss=f"{state['loss']:.3f}", refresh=False)
        bar.update(state["n"] - bar.n)

    def _line(self, state: dict) -> None:
        title, start, last = self.lines.get(state["run"], ("", 0.0, 0.0))
        now = time.monotonic()
        if title != state["title"]:
            title, start, last = state["title"], now, now
        if not state["done"] and now - last >= self.every_s and state["n"]:
            rate = state["n"] / max(now - start, 1e-9)
            left = (state["total"] - state["n"]) / rate
            log.info("%s  %d/%d clips  %.1f clips/s  ETA %s  loss %.3f", title, state["n"], state["total"], rate,
                     f"{left // 60:.0f}m{left % 60:02.0f}s", state["loss"])
            last = now
        self.lines[state["run"]] = (title, start, last)


def log_skipped(client, run_id: str, inputs: InputPlan, *, failing: bool = False) -> None:
    """``data/skipped.csv`` in the run: every training and validation video skipped in this
    invocation (split, path, reason, detail, first epoch), whether the run finished or stopped;
    when it is ``failing``, a tally that cannot answer is reported, not raised over the run's error."""
    import csv
    import tempfile

    try:
        rows = [{"split": split, **row} for split, tally in (("train", inputs.train_health),
                                                             ("val", inputs.val_health)) for row in tally.skipped()]
    except Exception as error:
        if not failing:
            raise
        log.warning("could not list the skipped videos of the failed run: %s", error)
        return
    if not rows:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "skipped.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["split", "path", "reason", "detail", "first_epoch"])
            writer.writeheader()
            writer.writerows(rows)
        client.log_artifact(run_id, str(path), artifact_path="data")
