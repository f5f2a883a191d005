"""The console a person follows: our lines and progress on it, Ray's own output in the log file.

One real `run.py train` (smoke preset, clips decoded by Ray Data every epoch, so Ray Data, Ray
Train and the multi-view test all have their say) checks the default, quiet console end to end;
the pieces that decide what `--verbose` shows, the progress bars and the sweep's status line are
checked without starting Ray.
"""
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from train_helpers import write_tiny_dataset

pytest.importorskip("ray")

from pipelines.cli.console import shown  # noqa: E402
from pipelines.cluster import PROGRESS_LOGGER, RAY_WORKERS_LOGGER, REMOTE_MARK, _route  # noqa: E402
from pipelines.training.reporting import EpochProgress, ProgressBars  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
RAYS_OWN = ("SplitCoordinator", "TrainingReport", "Starting execution of Dataset")


@pytest.fixture(scope="module")
def quiet_train(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    data = write_tiny_dataset(root / "data")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="0.2")
    done = subprocess.run([sys.executable, "run.py", "train", "--preset", "smoke", "--data", str(data),
                           "--storage", str(root / "runs"), "--name", "quiet", "--set", "run.workers=1",
                           "--set", "data.cache=none"],  # decoded by Ray Data every epoch: its lines too
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_a_quiet_train_shows_our_lines_and_puts_rays_in_the_log_file_it_names(quiet_train):
    out, err = quiet_train.stdout, quiet_train.stderr
    for text in RAYS_OWN:
        assert text not in out and text not in err, text
    assert "Trial status" not in out and "core_worker" not in out
    assert re.search(r"^epoch 1/2  loss \d+\.\d+  val top-1 \d+\.\d", out, re.M), out
    assert re.search(r"^epoch 2/2  loss ", out, re.M), out
    assert re.search(r"^test: top-1 \d+\.\d \[\d+\.\d, \d+\.\d\]  top-5 .* \(\d+ videos scored", out, re.M), out
    log_file = Path(re.search(r"^log: (\S+)", out, re.M).group(1))
    assert log_file.name == "quiet.log" and log_file.parent.name == "logs"
    logged = log_file.read_text()
    assert "TrainingReport" in logged and "Starting execution of Dataset" in logged
    assert "epoch 2/2  loss " in logged  # our lines too: the file is the whole story


def test_rays_lines_go_to_the_log_only_and_to_the_console_too_with_verbose(caplog):
    ours = f"{REMOTE_MARK} {logging.INFO} pipelines.training.reporting epoch 1/2  loss 1.000"
    batch = {"pid": 7, "actor_name": "RayTrainWorker", "is_err": False,
             "lines": ["Reporting training result 1: TrainingReport(metrics={})", ours]}
    printed = []
    with caplog.at_level(logging.INFO):
        _route(dict(batch), show=printed.append)  # --verbose: Ray prints its lines as it does
        _route(dict(batch))  # quiet
    assert [b["lines"] for b in printed] == [["Reporting training result 1: TrainingReport(metrics={})"]]
    records = {(r.name, r.getMessage()) for r in caplog.records}
    assert (RAY_WORKERS_LOGGER, "(RayTrainWorker pid=7) Reporting training result 1: TrainingReport(metrics={})") \
        in records  # the log file's
    assert ("pipelines.training.reporting", "epoch 1/2  loss 1.000") in records  # mark removed, logger kept
    ray_line = next(r for r in caplog.records if r.name == RAY_WORKERS_LOGGER)
    our_line = next(r for r in caplog.records if r.name.startswith("pipelines"))
    assert shown(our_line, verbose=False) and shown(our_line, verbose=True)
    assert not shown(ray_line, verbose=False) and not shown(ray_line, verbose=True)  # verbose: Ray printed it


def test_errors_from_ray_stay_on_the_console(caplog):
    batch = {"pid": 9, "task_name": "decode", "is_err": True,
             "lines": ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: broken"]}
    with caplog.at_level(logging.INFO):
        _route(batch)
    assert [r.levelno for r in caplog.records] == [logging.ERROR] * 3
    assert all(shown(r, verbose=False) for r in caplog.records)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def progress_records(monkeypatch, every_s=0.0):
    """EpochProgress's records, as the driver's router hands them on."""
    sent = []
    monkeypatch.setattr(logging.getLogger(PROGRESS_LOGGER), "info", lambda fmt, msg: sent.append(msg))
    bar = EpochProgress("sweep.2d", "2D", 0, 2, total=48, every_s=every_s)
    for clips in (12, 24, 36, 48):
        bar.update(clips, loss=1.5)
    bar.close()
    return [logging.LogRecord(PROGRESS_LOGGER, logging.INFO, "", 0, m, None, None) for m in sent]


def test_an_epoch_in_flight_is_a_tqdm_bar_with_clips_per_second_on_a_terminal(monkeypatch):
    records = progress_records(monkeypatch)
    assert json.loads(records[0].getMessage())["n"] == 0 and json.loads(records[-1].getMessage())["done"]
    terminal = Terminal()
    bars = ProgressBars(stream=terminal)
    for record in records:
        bars.emit(record)
    drawn = terminal.getvalue()
    assert "2D  epoch 1/2" in drawn and "36/48" in drawn and "clip/s" in drawn and "loss=1.500" in drawn
    assert bars.bars == {}  # closed with the epoch


def test_without_a_terminal_the_epoch_in_flight_is_a_line_now_and_then(monkeypatch, caplog):
    records = progress_records(monkeypatch)
    bars = ProgressBars(stream=io.StringIO(), every_s=0.0)
    with caplog.at_level(logging.INFO, logger="pipelines.training.reporting"):
        for record in records:
            bars.emit(record)
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all(line.startswith("2D  epoch 1/2  ") and "clips/s  ETA " in line for line in lines)


def test_the_sweep_line_counts_trials_and_gives_an_eta_from_the_epochs_logged_since_each_trial_started():
    from pipelines.sweeps.progress import SweepProgress

    logged = {("3D", 0): 1, ("TSM", 0): 3}  # TSM logged 3 of its 4 epochs in an earlier invocation
    progress = SweepProgress("demo", trials=3, epochs={"2D": 2, "3D": 2, "TSM": 4}, repeats=False, logged=lambda: logged)
    trials = [SimpleNamespace(trial_id=str(i), status=s, config={"row": row, "seed": 0}, last_result={})
              for i, (row, s) in enumerate([("2D", "PENDING"), ("3D", "PENDING"), ("TSM", "PENDING")])]
    for trial in trials:
        progress.on_trial_start(0, trials, trial)
        trial.status = "RUNNING"
    assert ", ETA " not in progress.status(trials)  # nothing done yet in this invocation

    logged.update({("3D", 0): 2, ("TSM", 0): 4})  # 3D: one epoch of two; TSM: one of four
    progress.count_logged(trials)
    assert progress.work == {"0": 0.0, "1": 0.5, "2": 0.25}
    line = progress.status(trials)
    assert line.startswith("sweep demo: 0/3 done, 3 running, 0 pending; ") and ", ETA " in line

    trials[0].last_result = {"test_top1": 50.0}
    progress.on_trial_complete(0, trials, trials[0])
    assert progress.work["0"] == 1.0
    assert progress.status(trials, trials[0], "TERMINATED").startswith("sweep demo: 1/3 done, 2 running, 0 pending")


def test_the_sweeps_progress_is_read_from_the_epochs_its_child_runs_logged(tmp_path):
    from mlflow.tracking import MlflowClient

    from pipelines.sweeps.progress import LoggedEpochs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("sweeps")
    parent = client.create_run(experiment, run_name="demo").info.run_id
    other = client.create_run(experiment, run_name="other sweep").info.run_id
    for row, epochs, under in (("2D", 3, parent), ("3D", 1, parent), ("3D", 2, other), ("TSM", 0, parent)):
        run = client.create_run(experiment, tags={"mlflow.parentRunId": under, "row": row, "seed": "0"}).info.run_id
        for epoch in range(epochs):
            client.log_metric(run, "epoch", epoch, step=epoch)
    assert LoggedEpochs(uri, experiment, parent)() == {("2D", 0): 3, ("3D", 0): 1}
