"""cluster/README.md at the smallest scale: Ray nodes on this machine, an MLflow tracking server,
and jobs submitted with the real `ray job submit`: a training run, then an ablation sweep.

The second node carries the decode label (like the CPU worker types of cluster/*.yaml), so the
decode actors must run there and the training worker on the head. The sweep's test adds a third
node that trains (as a GPU node would) and kills it mid-sweep. Every process started here is
in a process group of its own and is ended by that group (and, for Ray's workers, by this test's
own temp folder in their command line); `ray stop` is never called: it would stop every Ray on
the machine. Set SMALLBIG_SKIP_MULTINODE=1 to skip.
"""
import os
import shutil
import signal
import time

import pytest
import yaml

from cluster_helpers import LocalCluster, free_port, get_json, stop_job, submit, wait_for
from data_helpers import skip_or_fail_in_ci
from train_helpers import write_tiny_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
if os.environ.get("SMALLBIG_SKIP_MULTINODE"):
    pytest.skip("SMALLBIG_SKIP_MULTINODE is set", allow_module_level=True)
ray = pytest.importorskip("ray")

DECODE_ROLE = "decode"


def alive_nodes(dashboard_url: str) -> int:
    nodes = get_json(f"{dashboard_url}/api/v0/nodes?limit=20&detail=1")["data"]["result"]["result"]
    return sum(node["state"] == "ALIVE" for node in nodes)


@pytest.fixture(scope="module")
def cluster():
    local = LocalCluster.in_new_temp_dir("sbmn")
    temp_dir = local.temp_dir
    gcs, dashboard, mlflow_port = free_port(), free_port(), free_port()
    started = time.monotonic()
    try:
        head = local.ray_node("head", "--head", "--port", str(gcs), "--include-dashboard", "true",
                              "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                              "--ray-client-server-port", str(free_port()), "--temp-dir", str(temp_dir / "ray"),
                              "--labels", "smallbig/role=head")
        dashboard_url = f"http://127.0.0.1:{dashboard}"
        try:
            wait_for("ray head", lambda: get_json(f"{dashboard_url}/api/version"), 90, [head])
        except (RuntimeError, TimeoutError) as error:
            skip_or_fail_in_ci(f"cannot start a Ray head here ({error}):\n{local.log('head')}")
        # Its own temp folder, as on a machine of its own: two nodes sharing one would share
        # (and delete each other's) unpacked working directories.
        # Two CPUs: one decode actor each for two sweep trials side by side.
        for attempt in (1, 2):  # a port picked free can be taken before the node binds it: one retry
            worker = local.ray_node("decode-node", "--address", f"127.0.0.1:{gcs}", "--temp-dir",
                                    str(temp_dir / "ray2"), "--labels", f"smallbig/role={DECODE_ROLE}", cpus=2)
            try:
                wait_for("second ray node", lambda: alive_nodes(dashboard_url) == 2, 90, [head, worker])
                break
            except (RuntimeError, TimeoutError) as error:
                if attempt == 2:
                    raise RuntimeError(f"{error}\n{local.log('decode-node')}") from None
                print(f"second node did not start ({error}); retrying:\n{local.log('decode-node')}", flush=True)
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGKILL)  # the group this test started for it
                    worker.wait()
        mlflow_url = local.mlflow_server(mlflow_port)
        print(f"cluster up in {time.monotonic() - started:.0f} s", flush=True)
        yield {"dashboard": dashboard_url, "mlflow": mlflow_url, "mlflow_port": mlflow_port, "temp": temp_dir,
               "local": local, "gcs": f"127.0.0.1:{gcs}"}
    finally:
        local.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_job_submitted_to_two_nodes_trains_decodes_on_the_decode_node_and_is_tracked(cluster, tmp_path):
    from mlflow.tracking import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient
    from ray.util.state import list_actors, list_nodes

    data = write_tiny_dataset(tmp_path / "data")
    started = time.monotonic()
    submission_id, done = submit(cluster, tmp_path, ["train", "--preset", "smoke", "--data", str(data), "--name",
                                                     "multinode", "--storage", (tmp_path / "runs").as_uri(),
                                                     "--workers", "1", "--epochs", "1",
                                                     "--set", "data.cache=none"])  # decode actors, not the cache
    elapsed = time.monotonic() - started
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, output
    jobs = JobSubmissionClient(cluster["dashboard"])
    assert jobs.get_job_status(submission_id) == JobStatus.SUCCEEDED, output
    print(f"job SUCCEEDED in {elapsed:.0f} s", flush=True)

    # Where things ran: decode actors on the decode node, the training worker elsewhere.
    roles = {node.node_id: node.labels.get("smallbig/role")
             for node in list_nodes(address=cluster["dashboard"], detail=True)}
    actors = list_actors(address=cluster["dashboard"], detail=True, limit=1000)
    # An actor Ray Data asked for and then released before placing it has no node: it decoded nothing.
    decoders = {roles[a.node_id] for a in actors if "DecodeClips" in (a.class_name or "") and a.node_id}
    trainers = {roles[a.node_id] for a in actors if a.class_name == "RayTrainWorker"}
    assert decoders == {DECODE_ROLE}, ([(a.class_name, roles.get(a.node_id)) for a in actors], output)
    assert trainers and DECODE_ROLE not in trainers, [(a.class_name, roles.get(a.node_id)) for a in actors]

    # MLflow: the run is FINISHED in the tracking server, with its epochs and the served artifacts.
    client = MlflowClient(tracking_uri=cluster["mlflow"])
    experiment = client.get_experiment_by_name("smallbig")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`mlflow.runName` = 'multinode'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED", output
    run = runs[0]
    assert sorted(int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch")) == [0]
    assert {"train_loss", "val_top1", "test_top1"} <= set(run.data.metrics)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert {"test/metrics.json", "test/confusion.png"} <= {a.path for a in client.list_artifacts(run.info.run_id, "test")}
    assert any((cluster["temp"] / "mlartifacts").rglob("metrics.json"))  # in the server's artifact store

    # Checkpoints under the storage URI, as Ray Train wrote them.
    assert list((tmp_path / "runs" / "multinode").glob("checkpoint_*/state.pt"))


TWO_ROWS = {"title": "2D vs SmallBig", "rows": [{"label": "2D", "model": "r23_2d"},
                                                {"label": "SmallBig", "model": "smallbig_r23_3x1x1"}]}
SWEEP_EPOCHS = 3  # a node killed after the first epoch leaves at least one to resume


def node_ids_by_role(cluster) -> dict[str, set[str]]:
    from ray.util.state import list_nodes

    roles: dict[str, set[str]] = {}
    for node in list_nodes(address=cluster["dashboard"], detail=True):
        if node.state == "ALIVE":
            roles.setdefault(node.labels.get("smallbig/role"), set()).add(node.node_id)
    return roles


@pytest.mark.timeout(600)
def test_ablation_job_trains_trials_on_two_nodes_and_survives_losing_one(cluster, tmp_path):
    """cluster/README.md step 3: a sweep submitted with `ray job submit`, two trials side by side,
    each training on its own node (the head and a third node, as a GPU node would). Once the
    trial on the third node has checkpointed its first epoch, that node is killed (its `ray
    start` process group, SIGKILL, as a lost machine): Ray Train restarts the trial's worker
    group on the node left (the head, once the other trial's training frees it; no replacement
    node) from the last checkpoint, and the sweep finishes."""
    from mlflow.tracking import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient

    local = cluster["local"]
    train_node = local.ray_node("train-node", "--address", cluster["gcs"], "--temp-dir", str(cluster["temp"] / "ray3"),
                                "--labels", "smallbig/role=train")
    # 180 s: on a loaded 2-core machine a node has taken more than 90 s to join.
    wait_for("third ray node", lambda: len(node_ids_by_role(cluster).get("train", ())) == 1, 180, [train_node])
    roles = node_ids_by_role(cluster)
    (head,), (doomed,) = roles["head"], roles["train"]

    data = write_tiny_dataset(tmp_path / "data")
    grid = tmp_path / "two_rows.yaml"
    grid.write_text(yaml.safe_dump(TWO_ROWS))
    name = "multinode-sweep"
    holds = tmp_path / "holds"  # every worker pauses after its first epoch until the node is gone
    holds.mkdir()
    (holds / "hold").touch()
    started = time.monotonic()
    submission_id, done = submit(cluster, tmp_path, [
        "ablation", "--grid", str(grid), "--preset", "smoke", "--data", str(data), "--name", name,
        "--storage", (tmp_path / "runs").as_uri(), "--epochs", str(SWEEP_EPOCHS), "--max-concurrent", "2"], wait=False,
        env_vars={"PIPELINES_HOLD_DIR": str(holds)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = JobSubmissionClient(cluster["dashboard"])
    client = MlflowClient(tracking_uri=cluster["mlflow"])

    def children():
        experiment = client.get_experiment_by_name("smallbig")
        if experiment is None:
            return []
        return client.search_runs([experiment.experiment_id], filter_string=f"tags.sweep = '{name}'")

    def epochs(run):
        return sorted(int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch"))

    before = {}

    def one_trial_per_node_and_the_doomed_one_checkpointed():
        if jobs.get_job_status(submission_id).is_terminal():
            raise RuntimeError(f"the sweep ended first:\n{jobs.get_job_logs(submission_id)[-4000:]}")
        runs = children()
        before.update({r.data.tags["row"]: r.data.tags.get("train_node_ids") for r in runs})
        on_doomed = [r for r in runs if r.data.tags.get("train_node_ids") == doomed]
        return len(runs) == 2 and all(before.values()) and on_doomed and epochs(on_doomed[0])

    try:
        wait_for("both trials training, one past its first epoch on the third node",
                 one_trial_per_node_and_the_doomed_one_checkpointed, 300)
        print(f"trials training after {time.monotonic() - started:.0f} s on {before}", flush=True)
        assert sorted(before.values()) == sorted([head, doomed])  # two trials, two nodes
        victim = next(row for row, nodes in before.items() if nodes == doomed)
        # The node is gone, as a lost machine: its `ray start` process group (raylet, agents) and
        # every worker process it started, which the raylet may have put in sessions of their own.
        # They die before the hold is lifted: a worker left alive would finish its epochs first.
        from ray.util.state import list_workers

        on_doomed = [w.pid for w in list_workers(address=cluster["dashboard"], limit=10_000)
                     if w.node_id == doomed and w.pid]
        os.killpg(train_node.pid, signal.SIGKILL)
        for pid in on_doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed = time.monotonic()
        (holds / "hold").unlink()  # the other trial goes on; the victim resumes elsewhere
        wait_for("the sweep", lambda: jobs.get_job_status(submission_id).is_terminal(), 420)
    finally:
        if not jobs.get_job_status(submission_id).is_terminal():
            stop_job(cluster, submission_id)
    logs = jobs.get_job_logs(submission_id)
    print(f"sweep done {time.monotonic() - killed:.0f} s after the kill, {time.monotonic() - started:.0f} s "
          "after the submission", flush=True)
    print("\n".join(line[:200] for line in logs.splitlines()
                    if any(k in line for k in ("resuming from", "[FailurePolicy]", "Error count", "epoch "))), flush=True)
    assert jobs.get_job_status(submission_id) == JobStatus.SUCCEEDED, logs[-6000:]
    assert "resuming from epoch" in logs, logs[-6000:]  # from the checkpoint, not from scratch

    experiment = client.get_experiment_by_name("smallbig")
    parents = client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = {r.data.tags["row"]: r for r in children()}
    assert sorted(runs) == ["2D", "SmallBig"]
    after = {row: run.data.tags["train_node_ids"] for row, run in runs.items()}
    drivers = {row: run.data.tags["driver_node_id"] for row, run in runs.items()}
    print(f"trained on, before the kill: {before}; at the end: {after}; trial drivers on: {drivers}; "
          f"head {head}, killed {doomed}", flush=True)
    for row, run in runs.items():
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert epochs(run) == list(range(SWEEP_EPOCHS)), row  # every epoch trained and logged once
        assert "test_top1" in run.data.metrics
    assert after[victim] != doomed  # the restarted worker group trained elsewhere
