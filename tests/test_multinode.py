"""cluster/README.md at the smallest scale: Ray nodes on this machine, an MLflow tracking server,
and a training run submitted with the real `ray job submit` (its code uploaded as the working
directory). A sweep on a cluster, and a training node lost mid-sweep, are tests/test_autoscaling.py's.

The second node carries the decode label (like the CPU worker types of cluster/*.yaml), so the
decode actors must run there and the training worker on the head. Every process started here is
in a process group of its own and is ended by that group (and, for Ray's workers, by this test's
own temp folder in their command line); `ray stop` is never called: it would stop every Ray on
the machine. Set SMALLBIG_SKIP_MULTINODE=1 to skip.
"""
import os
import shutil
import signal
import time

import pytest

from cluster_helpers import LocalCluster, free_port, get_json, submit, wait_for
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
