"""cluster/README.md's autoscaling, rehearsed on one machine: a Ray autoscaler adds training nodes for
a sweep's trials from zero, replaces one lost mid-trial, and removes them once idle.

Ray's fake multi-node provider (``RAY_FAKE_CLUSTER=1``) runs the real autoscaler, whose "nodes"
are raylets started on this machine, with node types that mirror ``cluster/aws.yaml``: a head
that trains nothing (0 CPU), a CPU decode node type (its label; one node from the start, as the
launcher keeps its decode nodes) and a training node type from 0. This machine has no GPU, so a
training node offers a custom resource, ``accelerator``, in a GPU's place, and the sweep asks for
it per worker with ``--set cluster.worker_resources=...`` (as a real cluster asks for
``accelerator_type:H100``). The sweep is sent with the real ``ray job submit``.
Set SMALLBIG_SKIP_MULTINODE=1 to skip.
"""
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from cluster_helpers import LocalCluster, free_port, get_json, stop_job, submit, wait_for
from pipelines.cluster import DECODE_LABEL
from train_helpers import write_tiny_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
if os.environ.get("SMALLBIG_SKIP_MULTINODE"):
    pytest.skip("SMALLBIG_SKIP_MULTINODE is set", allow_module_level=True)
ray = pytest.importorskip("ray")

HEAD_ID = "f" * 51 + "00000"  # the fake provider's name for the head node
ACCELERATOR = "accelerator"
IDLE_MINUTES = 0.25


def autoscaling_config(gcs: str) -> dict:
    """The launcher config of cluster/aws.yaml at the scale of 2 cores (fake provider)."""
    (label, role), = DECODE_LABEL.items()
    return {
        "cluster_name": "rehearsal", "max_workers": 3, "idle_timeout_minutes": IDLE_MINUTES, "upscaling_speed": 1.0,
        # node ids stand for IPs (every fake node has this machine's); the fake nodes need no setup
        "provider": {"type": "fake_multinode", "gcs_address": gcs, "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True},
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "cpu_decode": {"resources": {"CPU": 1}, "labels": {label: role}, "node_config": {},
                           "min_workers": 1, "max_workers": 1},
            # two, so a replacement can start before the autoscaler has given up on a lost one
            "gpu_train": {"resources": {"CPU": 1, ACCELERATOR: 1}, "labels": {label: "train"}, "node_config": {},
                          "min_workers": 0, "max_workers": 2},
        },
        "auth": {"ssh_user": "ubuntu"}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [],
        "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def training_nodes(dashboard: str) -> list[dict]:
    nodes = get_json(f"{dashboard}/api/v0/nodes?limit=50&detail=1")["data"]["result"]["result"]
    return [n for n in nodes if n["state"] == "ALIVE" and ACCELERATOR in (n.get("resources_total") or {})]


@pytest.fixture(scope="module")
def cluster():
    local = LocalCluster.in_new_temp_dir("sbas")
    temp_dir = local.temp_dir
    local.env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_OVERRIDE_NODE_ID_FOR_TESTING=HEAD_ID)
    gcs, dashboard, mlflow_port = free_port(), free_port(), free_port()
    config = temp_dir / "autoscaling.yaml"
    config.write_text(yaml.safe_dump(autoscaling_config(f"127.0.0.1:{gcs}")))
    try:
        head = local.ray_node("head", "--head", "--port", str(gcs), "--include-dashboard", "true",
                              "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                              "--ray-client-server-port", str(free_port()), "--temp-dir", str(temp_dir / "ray"),
                              "--autoscaling-config", str(config), cpus=0)
        url = f"http://127.0.0.1:{dashboard}"
        wait_for("ray head", lambda: get_json(f"{url}/api/version"), 120, [head])
        mlflow_url = local.mlflow_server(mlflow_port)
        yield {"dashboard": url, "mlflow": mlflow_url, "mlflow_port": mlflow_port,
               "temp": temp_dir, "local": local, "gcs": f"127.0.0.1:{gcs}"}
    finally:
        local.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


class NodeWatch:
    """The training nodes over time, as (seconds since the submission, how many are alive)."""

    def __init__(self, dashboard: str) -> None:
        self.dashboard, self.started, self.timeline = dashboard, time.monotonic(), []

    def sample(self) -> list[dict]:
        nodes = training_nodes(self.dashboard)
        if not self.timeline or self.timeline[-1][1] != len(nodes):
            self.timeline.append((round(time.monotonic() - self.started, 1), len(nodes)))
        return nodes


def kill_node(node_id: str, temp_dir: Path, dashboard: str) -> None:
    """A lost machine: every process of that fake node (its raylet, agents and workers name it)."""
    from ray.util.state import list_workers

    victims = {w.pid for w in list_workers(address=dashboard, filters=[("node_id", "=", node_id)], limit=10_000) if w.pid}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            line = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if node_id.encode() in line and str(temp_dir).encode() in line:
            victims.add(int(entry.name))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_sweep_brings_training_nodes_up_from_zero_survives_losing_one_and_leaves_none(cluster, tmp_path):
    from mlflow.tracking import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient

    url = cluster["dashboard"]
    (label, role), = DECODE_LABEL.items()
    assert training_nodes(url) == []  # from zero
    wait_for("the decode node the launcher keeps", lambda: any(
        n["state"] == "ALIVE" and (n.get("labels") or {}).get(label) == role
        for n in get_json(f"{url}/api/v0/nodes?limit=50&detail=1")["data"]["result"]["result"]), 120)

    data = write_tiny_dataset(tmp_path / "data")
    grid = tmp_path / "two_rows.yaml"
    grid.write_text(yaml.safe_dump({"title": "2D vs SmallBig", "rows": [
        {"label": "2D", "model": "r23_2d"}, {"label": "SmallBig", "model": "smallbig_r23_3x1x1"}]}))
    holds = tmp_path / "holds"  # the first trial pauses after its first epoch until its node is gone
    name = "autoscaled"
    watch = NodeWatch(url)
    submission_id, done = submit(cluster, tmp_path, [
        "ablation", "--grid", str(grid), "--preset", "smoke", "--data", str(data), "--name", name,
        "--storage", (tmp_path / "runs").as_uri(), "--epochs", "2", "--max-concurrent", "1",
        "--set", "run.cpus_per_worker=1", "--set", f"cluster.worker_resources={json.dumps({ACCELERATOR: 1})}"],
        wait=False, env_vars={"PIPELINES_HOLD_DIR": str(holds)}, upload=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (holds / f"{name}.2D.epoch0.hold").parent.mkdir(parents=True, exist_ok=True)
    (holds / f"{name}.2D.epoch0.hold").touch()
    jobs = JobSubmissionClient(url)
    try:
        def first_epoch_held():
            watch.sample()
            if jobs.get_job_status(submission_id).is_terminal():
                raise RuntimeError(f"the sweep ended first:\n{jobs.get_job_logs(submission_id)[-4000:]}")
            return (holds / f"{name}.2D.epoch0").exists()

        wait_for("the first trial's first epoch, on a node the autoscaler added", first_epoch_held, 300)
        first_node = next(t for t, count in watch.timeline if count >= 1)
        (doomed,) = [n["node_id"] for n in watch.sample()]
        kill_node(doomed, cluster["temp"], url)
        (holds / f"{name}.2D.epoch0.hold").unlink()

        def finished():
            watch.sample()
            return jobs.get_job_status(submission_id).is_terminal()

        wait_for("the sweep", finished, 600)
        logs = jobs.get_job_logs(submission_id)
        assert jobs.get_job_status(submission_id) == JobStatus.SUCCEEDED, logs[-6000:]
        wait_for("the training nodes removed once idle", lambda: not watch.sample(), 180)
    finally:
        if not jobs.get_job_status(submission_id).is_terminal():
            stop_job(cluster, submission_id)
    print(f"first training node {first_node:.0f} s after the submission; training nodes over time "
          f"(s, nodes): {watch.timeline}", flush=True)
    assert "resuming from epoch" in logs, logs[-6000:]  # the lost node's trial, from its checkpoint
    assert max(count for _, count in watch.timeline) >= 1 and watch.timeline[-1][1] == 0

    client = MlflowClient(tracking_uri=cluster["mlflow"])
    experiment = client.get_experiment_by_name("smallbig")
    parents = client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.sweep = '{name}'")
    assert sorted(r.data.tags["row"] for r in runs) == ["2D", "SmallBig"]
    for run in runs:
        assert run.info.status == "FINISHED", run.data.tags["row"]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id and "test_top1" in run.data.metrics
        epochs = sorted(int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch"))
        assert epochs == [0, 1], run.data.tags["row"]  # each epoch trained and logged once
        assert doomed not in run.data.tags["train_node_ids"] or run.data.tags["row"] == "2D"
