"""Racing seeds end to end: `run.py ablation --seeds auto --budget 6` on a two-row grid, stopped
in its second round with Ctrl-C and run again, on real Ray Tune + Ray Train and a real MLflow store.

The race is deterministic (same seeds, same clips, same numbers), so its rounds are too: on this
dataset the first round separates nothing and both rows get a third seed.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest

from train_helpers import PausePoints, stop_session, write_tiny_dataset

pytest.importorskip("ray")
from mlflow.tracking import MlflowClient  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
GRID = {"title": "two rows", "rows": [{"label": "2D", "model": "r23_2d"},
                                      {"label": "SmallBig 3x1x1", "model": "smallbig_r23_3x1x1"}]}
SLUGS = ("2D", "SmallBig_3x1x1")
BUDGET = 6


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """The race run twice: stopped (Ctrl-C) once a third seed is starting, then to the end."""
    root = tmp_path_factory.mktemp("race")
    (root / "grid.yaml").write_text(yaml.safe_dump(GRID))
    data = write_tiny_dataset(root / "data", {"train": 4, "val": 1, "test": 4})
    command = [sys.executable, "run.py", "ablation", "--grid", str(root / "grid.yaml"), "--preset", "smoke",
               "--data", str(data), "--storage", str(root / "runs"), "--name", "race", "--seeds", "auto",
               "--budget", str(BUDGET)]
    pauses = PausePoints(root / "pauses")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", **pauses.env)
    third = [f"race.{slug}.seed2" for slug in SLUGS]
    for run in third:
        pauses.hold(run, "start")
    first = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while not any(pauses.arrivals(run, "start") for run in third):
            assert first.poll() is None, "the race ended before a third seed started:\n" + first.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no third seed started within 900 s"
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        first.wait(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
        stop_session(first.pid)
        for run in third:
            pauses.release(run, "start")
    stopped = first.stdout.read()
    resumed = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'runs' / 'mlflow.db'}")
    return root, stopped, resumed, client, pauses


def parent_and_children(client):
    experiment = client.get_experiment_by_name("smallbig").experiment_id
    parents = client.search_runs([experiment], filter_string="tags.`mlflow.runName` = 'race'")
    assert len(parents) == 1
    children = client.search_runs([experiment],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    return parents[0], children


def test_a_race_trains_every_row_at_least_twice_within_its_budget_and_says_how_it_ended(race):
    _, stopped, resumed, client, _ = race
    assert "race after round 1:" in stopped
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]
    parent, children = parent_and_children(client)
    trials = sorted((c.data.tags["row"], int(c.data.tags["seed"])) for c in children)
    assert len(trials) == len(set(trials)) <= BUDGET  # no trial twice, none past the budget
    for row in GRID["rows"]:
        assert sum(1 for label, _ in trials if label == row["label"]) >= 2
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["seeds"] == "auto" and parent.data.params["budget"] == str(BUDGET)
    verdict = parent.data.tags["verdict"]
    assert verdict.startswith("best: ") and "Holm-adjusted p < 0.01" in verdict
    assert parent.data.tags["race"].startswith(("budget spent", "answered"))
    assert f"Verdict: {verdict}" in resumed.stdout and "race over: " in resumed.stdout


def test_a_race_stopped_in_its_second_round_resumes_without_training_a_finished_trial_again(race):
    _, _, resumed, _, pauses = race
    for slug in SLUGS:
        for seed in (0, 1):  # the first round finished before the stop: reused by the rerun, never restarted
            assert pauses.arrivals(f"race.{slug}.seed{seed}", "start") == 1
    for slug, row in zip(SLUGS, GRID["rows"]):
        assert f"{row['label']} seed0  started" not in resumed.stdout
        assert pauses.arrivals(f"race.{slug}.seed2", "start") <= 2  # held when stopped, started once more at most
    assert "race after round 1:" in resumed.stdout  # the first round's decision, replayed from its trials


def test_the_race_table_has_seed_aware_columns_and_intervals_no_narrower_than_pooled_wilson(race):
    root, _, _, _, _ = race
    with open(root / "runs" / "race" / "results" / "results.csv") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["row"] for line in lines] == [row["label"] for row in GRID["rows"]]
    verdicts = {line["verdict"] for line in lines}
    assert "best" in verdicts and verdicts <= {"best", "tied with best", "below best"}
    for line in lines:
        for column in ("seeds", "test_top1_sd", "p_holm", "vs_best_delta", "vs_best_p", "verdict", "test_videos"):
            assert column in line, column
        seeds, videos = int(line["seeds"]), int(line["test_videos"])
        assert seeds >= 2 and videos == 12
        correct = round(float(line["test_top1"]) * seeds * videos / 100)
        wilson = binomtest(correct, seeds * videos).proportion_ci(0.95, method="wilson")
        assert float(line["test_top1_low"]) <= round(100 * wilson.low, 2) + 0.01
        assert float(line["test_top1_high"]) >= round(100 * wilson.high, 2) - 0.01
        if line["verdict"] != "best":
            assert line["vs_best_delta"] and float(line["vs_best_p_holm"]) >= float(line["vs_best_p"])
