"""cluster/README.md at the smallest scale: two Ray nodes on this machine, an MLflow tracking
server, and a training job submitted with the real `ray job submit`.

The second node carries the decode label (like the CPU worker types of cluster/*.yaml), so the
decode actors must run there and the training worker on the head. Every process started here is
in a process group of its own and is ended by that group (and, for Ray's workers, by this test's
own temp folder in their command line); `ray stop` is never called: it would stop every Ray on
the machine. Set SMALLBIG_SKIP_MULTINODE=1 to skip.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from train_helpers import write_tiny_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
if os.environ.get("SMALLBIG_SKIP_MULTINODE"):
    pytest.skip("SMALLBIG_SKIP_MULTINODE is set", allow_module_level=True)
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DECODE_ROLE = "decode"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode() or "null")


def wait_for(what: str, check, timeout: float, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {process.args[:3]} exited with {process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


class LocalCluster:
    """Processes this test starts, each in its own process group, and how to end them."""

    def __init__(self, temp_dir: Path, log_dir: Path):
        self.temp_dir, self.log_dir = temp_dir, log_dir
        self.processes: list[subprocess.Popen] = []
        self.env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_HEAD_IP="127.0.0.1",
                        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0")
        self.env.pop("RAY_ADDRESS", None)
        self.env.pop("MLFLOW_TRACKING_URI", None)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.log_dir,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def ray_node(self, name: str, *args: str) -> subprocess.Popen:
        ports = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                   "--num-gpus", "0", "--disable-usage-stats", *args]
        for option in ports:
            command += [option, str(free_port())]
        return self.start(name, command)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            for process in reversed(self.processes):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(p.poll() is None for p in self.processes):
                time.sleep(0.2)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """Ray workers that left our process groups: only those naming this test's temp folder."""
        marker = str(self.temp_dir).encode()
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if int(entry.name) != os.getpid() and marker in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture(scope="module")
def cluster():
    temp_dir = Path(tempfile.mkdtemp(prefix="sbmn", dir="/tmp"))  # short: Ray's socket paths must fit
    logs = temp_dir / "logs"
    logs.mkdir()
    local = LocalCluster(temp_dir, logs)
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
            pytest.skip(f"cannot start a Ray head here ({error}):\n{local.log('head')}")
        # Its own temp folder, as on a machine of its own: two nodes sharing one would share
        # (and delete each other's) unpacked working directories.
        worker = local.ray_node("decode-node", "--address", f"127.0.0.1:{gcs}", "--temp-dir", str(temp_dir / "ray2"),
                                "--labels", f"smallbig/role={DECODE_ROLE}")
        server = local.start("mlflow", [str(BIN / "mlflow"), "server",
                                        "--backend-store-uri", f"sqlite:///{temp_dir / 'mlflow.db'}",
                                        "--artifacts-destination", str(temp_dir / "mlartifacts"),
                                        "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"])

        def two_nodes():
            nodes = get_json(f"{dashboard_url}/api/v0/nodes?limit=10&detail=1")["data"]["result"]["result"]
            return sum(node["state"] == "ALIVE" for node in nodes) == 2

        wait_for("second ray node", two_nodes, 90, [head, worker])
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        wait_for("mlflow server", lambda: urllib.request.urlopen(f"{mlflow_url}/health", timeout=5).status == 200,
                 90, [server])
        print(f"cluster up in {time.monotonic() - started:.0f} s", flush=True)
        yield {"dashboard": dashboard_url, "mlflow": mlflow_url, "mlflow_port": mlflow_port, "temp": temp_dir,
               "local": local}
    finally:
        local.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit(cluster, tmp_path, data, name):
    """`ray job submit` as cluster/README.md says, with the server's port in the runtime env."""
    runtime_env = yaml.safe_load((ROOT / "cluster" / "runtime_env.yaml").read_text())
    # The same ${RAY_HEAD_IP} expansion as on a cloud cluster (the nodes run with RAY_HEAD_IP=127.0.0.1).
    runtime_env["env_vars"]["MLFLOW_TRACKING_URI"] = f"http://${{RAY_HEAD_IP}}:{cluster['mlflow_port']}"
    runtime_env["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    env_file = tmp_path / "runtime_env.yaml"
    env_file.write_text(yaml.safe_dump(runtime_env))
    submission_id = f"multinode-{int(time.time())}"
    command = [str(BIN / "ray"), "job", "submit", "--address", cluster["dashboard"], "--submission-id", submission_id,
               "--working-dir", str(ROOT), "--runtime-env", str(env_file), "--",
               "python", "run.py", "train", "--preset", "smoke", "--data", str(data), "--name", name,
               "--storage", (tmp_path / "runs").as_uri(), "--workers", "1", "--epochs", "1"]
    env = dict(cluster["local"].env)
    try:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        subprocess.run([str(BIN / "ray"), "job", "stop", "--address", cluster["dashboard"], submission_id],
                       env=env, capture_output=True, timeout=60)
        raise
    return submission_id, done


def test_job_submitted_to_two_nodes_trains_decodes_on_the_decode_node_and_is_tracked(cluster, tmp_path):
    from mlflow.tracking import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient
    from ray.util.state import list_actors, list_nodes

    data = write_tiny_dataset(tmp_path / "data")
    started = time.monotonic()
    submission_id, done = submit(cluster, tmp_path, data, "multinode")
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
    decoders = {roles[a.node_id] for a in actors if "DecodeClips" in (a.class_name or "")}
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
