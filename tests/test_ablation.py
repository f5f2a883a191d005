"""The main job end to end: `run.py ablation` on real Ray Tune + Ray Train, a real MLflow store.

Every sweep runs as a user would run it, `python run.py ablation ...` in a subprocess with
its own local Ray, on a tiny three-class dataset of real mp4 files with the `smoke` preset.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipelines.training.predictions import FILE_NAME as PREDICTIONS
from train_helpers import PausePoints, stop_session, write_tiny_dataset

pytest.importorskip("ray")
from mlflow.tracking import MlflowClient  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
TWO_ROWS = {"title": "2D vs SmallBig", "rows": [
    {"label": "2D", "model": "r23_2d"},
    {"label": "SmallBig 3x1x1", "model": "smallbig_r23_3x1x1", "set": {"optim.lr": 0.01}},
]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    grid = root / "two_rows.yaml"
    grid.write_text(yaml.safe_dump(TWO_ROWS))
    return root, write_tiny_dataset(root / "data"), grid


def ablation_command(workspace, name):
    root, data, grid = workspace
    return [sys.executable, "run.py", "ablation", "--grid", str(grid), "--preset", "smoke", "--data", str(data),
            "--storage", str(root / "runs"), "--name", name, "--max-concurrent", "1"]


def environment(workspace):
    root, _, _ = workspace
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="0.2", **PausePoints(root / "pauses").env)
    return env


def run_ablation(workspace, name, timeout=600):
    return subprocess.run(ablation_command(workspace, name), cwd=PROJECT, env=environment(workspace),
                          capture_output=True, text=True, timeout=timeout)


def mlflow(workspace):
    root, _, _ = workspace
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'runs' / 'mlflow.db'}")
    return client, client.get_experiment_by_name("smallbig").experiment_id


def sweep_runs(workspace, name):
    client, experiment = mlflow(workspace)
    parents = client.search_runs([experiment], filter_string=f"tags.`mlflow.runName` = '{name}'")
    children = []
    for parent in parents:
        children += client.search_runs([experiment],
                                       filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return client, parents, sorted(children, key=lambda r: r.data.tags["row"])


def logged_epochs(client, run_id):
    return sorted(int(m.value) for m in client.get_metric_history(run_id, "epoch"))


FIRST, SECOND = "two-rows.2D", "two-rows.SmallBig_3x1x1"  # the trials' run names
# Each invocation of the sweep but the last is stopped where the second trial holds, in order:
STOPS = (("start", signal.SIGINT),  # Ctrl-C while the trial is starting
         ("epoch0.registered", signal.SIGKILL),  # the driver killed between Ray's registration of epoch 0 and MLflow
         ("epoch1.train", signal.SIGINT),  # Ctrl-C mid-epoch
         ("test", signal.SIGINT))  # Ctrl-C during the trial's multi-view test


def stop_when_held(workspace, pauses, point, how):
    """One invocation of the sweep, stopped with ``how`` once the second trial holds at ``point``;
    returns the first trial's MLflow run as it was then."""
    first = subprocess.Popen(ablation_command(workspace, "two-rows"), cwd=PROJECT, env=environment(workspace),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        pauses.wait(SECOND, point, still_running=lambda: first.poll() is None)
        first.send_signal(how)
        first.wait(timeout=180)
    except BaseException:
        first.kill()
        raise
    finally:
        first.wait()
        # What the invocation leaves behind (all of its local Ray after a SIGKILL) is gone before
        # the point is released: a process of it released would run on, into the next invocation.
        stop_session(first.pid)
        pauses.release(SECOND, point)
    client, parents, children = sweep_runs(workspace, "two-rows")
    assert len(parents) == 1 and len(children) <= 2
    if how == signal.SIGINT:  # a Ctrl-C ends the sweep's runs; a SIGKILL cannot, the rerun must
        assert parents[0].info.status == "KILLED"
    done = [c for c in children if c.info.status == "FINISHED"]
    assert [c.data.tags["row"] for c in done] == ["2D"], first.stdout.read()[-3000:]
    return done[0]


@pytest.fixture(scope="module")
def interrupted_then_resumed(workspace):
    """The same sweep command run five times: four stopped at the points of ``STOPS`` while the
    second row trains (the first row finished in the first), the fifth to the end."""
    root, _, _ = workspace
    pauses = PausePoints(root / "pauses")
    for point, _ in STOPS:
        pauses.hold(SECOND, point)
    finished = [stop_when_held(workspace, pauses, point, how) for point, how in STOPS]
    return finished, run_ablation(workspace, "two-rows"), pauses


def test_a_two_row_sweep_trains_both_rows_and_prints_the_results_table(interrupted_then_resumed):
    _, resumed, _ = interrupted_then_resumed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout
    assert "| row | model | params (M) |" in out
    assert "| 2D | r23_2d |" in out and "| SmallBig 3x1x1 | smallbig_r23_3x1x1 |" in out
    assert "| Δ | p (Holm) |" in out and "Wilson score interval" in out and "McNemar" in out
    assert "Verdict: unresolved: one seed per row" in out


def test_the_sweep_is_one_parent_run_with_one_finished_child_per_row(workspace, interrupted_then_resumed):
    client, parents, children = sweep_runs(workspace, "two-rows")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    tags = parents[0].data.tags
    assert tags["grid"] == "two_rows" and tags["preset"] == "smoke" and tags["git_commit"] and tags["dataset"]
    assert [c.data.tags["row"] for c in children] == ["2D", "SmallBig 3x1x1"]  # no duplicates
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for key in ("val_top1", "train_loss", "test_top1", "test_top5", "train_clips_per_s"):
            assert key in child.data.metrics, key
        assert int(child.data.params["model.params"]) > 1e6 and float(child.data.params["model.gmacs"]) > 0
        assert f"test/{PREDICTIONS}" in {a.path for a in client.list_artifacts(child.info.run_id, "test")}
    two_d, smallbig = children
    assert two_d.data.params["model.name"] == "r23_2d" and two_d.data.params["optim.lr"] == "0.02"
    assert smallbig.data.params["model.name"] == "smallbig_r23_3x1x1" and smallbig.data.params["optim.lr"] == "0.01"
    # the big view's extra BN makes SmallBig a little larger than the 2D net
    assert int(smallbig.data.params["model.params"]) > int(two_d.data.params["model.params"])


def test_the_parent_run_holds_the_results_table_csv_and_chart(workspace, interrupted_then_resumed):
    client, parents, _ = sweep_runs(workspace, "two-rows")
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "results")}
    assert artifacts == {"results/results.md", "results/results.csv", "results/results.png"}
    folder = Path(client.download_artifacts(parents[0].info.run_id, "results"))
    rows = (folder / "results.csv").read_text().splitlines()
    assert rows[0].startswith("row,model,params_m,gmacs,test_top1,test_top1_low,test_top1_high,test_top1_sd,delta,p")
    assert len(rows) == 3
    assert parents[0].data.tags["best_row"] in ("2D", "SmallBig 3x1x1")  # the collapsed sweep's summary
    assert "best_test_top1" in parents[0].data.metrics
    assert parents[0].data.tags["mlflow.note.content"].startswith("**2D vs SmallBig**")
    assert (folder / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_a_stopped_sweep_never_retrains_a_finished_row_or_a_registered_epoch(workspace, interrupted_then_resumed):
    finished, _, pauses = interrupted_then_resumed
    _, _, children = sweep_runs(workspace, "two-rows")
    first = next(c for c in children if c.data.tags["row"] == "2D")
    # the first row finished in the first invocation and no rerun touched it
    assert {run.info.run_id for run in finished} == {first.info.run_id}
    assert {run.info.end_time for run in finished} == {first.info.end_time}
    assert [pauses.arrivals(FIRST, f"epoch{epoch}.train") for epoch in (0, 1)] == [1, 1]
    # the second: epoch 0, registered before the driver was killed, trained once; epoch 1, stopped
    # mid-epoch, trained again once; the test, stopped, run again once
    assert [pauses.arrivals(SECOND, f"epoch{epoch}.train") for epoch in (0, 1)] == [1, 2]
    assert pauses.arrivals(SECOND, "test") == 2


def test_a_stopped_sweep_leaves_no_run_running_and_logs_every_epoch_and_metric_step_once(workspace,
                                                                                        interrupted_then_resumed):
    client, experiment = mlflow(workspace)
    assert not client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    _, parents, children = sweep_runs(workspace, "two-rows")
    assert [c.data.tags["row"] for c in children] == ["2D", "SmallBig 3x1x1"]  # one run per row, no duplicates
    for run in (*parents, *children):
        assert run.info.status == "FINISHED"
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), (run.data.tags["mlflow.runName"], key, steps)
    for child in children:  # the epoch registered just before the SIGKILL was logged on the rerun
        assert logged_epochs(client, child.info.run_id) == [0, 1]


def test_the_sweeps_console_is_ours_and_rays_own_output_is_in_its_log_file(workspace, interrupted_then_resumed):
    root, _, _ = workspace
    _, resumed, _ = interrupted_then_resumed
    out = resumed.stdout
    for text in ("SplitCoordinator", "TrainingReport", "Starting execution of Dataset", "Trial status",
                 "Configuration for experiment"):
        assert text not in out and text not in resumed.stderr, text
    assert "(sweep two-rows: 2/2 done, 0 running, 0 pending; " in out, out
    assert "SmallBig 3x1x1  finished: test top-1 " in out
    log_file = root / "runs" / "logs" / "two-rows.log"
    assert f"log: {log_file}" in out
    assert "TrainingReport" in log_file.read_text()  # both invocations append to it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rest(base: str, path: str, body: dict | None = None, **query) -> dict:
    """One MLflow REST call: GET with ``query``, or POST of ``body`` as JSON."""
    url = f"{base}/api/2.0/mlflow/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_server(base: str, server: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, f"mlflow server exited with {server.returncode}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    pytest.fail(f"mlflow server did not answer within {timeout:.0f} s")


def test_the_mlflow_server_shows_a_training_experiment_with_the_sweep_and_its_rows(workspace,
                                                                                   interrupted_then_resumed):
    """What the MLflow UI reads, read the same way: a real `mlflow server` over the sweep's store."""
    from pipelines.sweeps.grids import load_grid

    root, _, grid_file = workspace
    store = root / "runs"
    port = free_port()
    env = {**environment(workspace), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers: starts faster
    server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server",
                               "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                               "--default-artifact-root", str(store / "mlartifacts"),
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base, server)
        experiment = rest(base, "experiments/get-by-name", experiment_name="smallbig")["experiment"]
        assert {t["key"]: t["value"] for t in experiment["tags"]}["mlflow.experimentKind"] == "custom_model_development"
        search = {"experiment_ids": [experiment["experiment_id"]], "max_results": 100}
        parents = rest(base, "runs/search", {**search, "filter": "tags.`mlflow.runName` = 'two-rows'"})["runs"]
        assert len(parents) == 1
        parent = parents[0]
        tags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
        assert tags["best_row"] in ("2D", "SmallBig 3x1x1")
        assert "best_test_top1" in {m["key"] for m in parent["data"]["metrics"]}
        parent_id = parent["info"]["run_id"]
        children = rest(base, "runs/search", {**search, "filter": f"tags.`mlflow.parentRunId` = '{parent_id}'"})["runs"]
        slugs = sorted(row.slug for row in load_grid(str(grid_file)).rows)
        names = sorted(child["info"]["run_name"] for child in children)
        assert len(names) == len(slugs) and all(slug in name for slug, name in zip(slugs, names)), (slugs, names)
        for child in children:
            tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
            assert tags["mlflow.parentRunId"] == parent_id and child["info"]["status"] == "FINISHED"
            metrics = {m["key"] for m in child["data"]["metrics"]}
            assert {"test_top1", "test_top5", "val_top1", "train_clips_per_s"} <= metrics, metrics
            params = {p["key"] for p in child["data"]["params"]}
            assert {"model.params", "model.gmacs"} <= params
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
