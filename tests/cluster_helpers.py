"""Ray clusters made of processes on this machine, for the cluster tests: nodes started with the
real `ray start`, each in a process group of its own, ended by that group (and Ray's stray
workers by the test's temp folder in their command line; `ray stop` is never called: it would
stop every Ray on the machine); jobs sent with the real `ray job submit`."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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

    @classmethod
    def in_new_temp_dir(cls, prefix: str) -> "LocalCluster":
        temp_dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: Ray's socket paths must fit
        (temp_dir / "logs").mkdir()
        return cls(temp_dir, temp_dir / "logs")

    def mlflow_server(self, port: int) -> str:
        """An ``mlflow server`` with a sqlite store and served artifacts in the temp folder; its URL."""
        server = self.start("mlflow", [str(BIN / "mlflow"), "server",
                                       "--backend-store-uri", f"sqlite:///{self.temp_dir / 'mlflow.db'}",
                                       "--artifacts-destination", str(self.temp_dir / "mlartifacts"),
                                       "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])
        url = f"http://127.0.0.1:{port}"
        wait_for("mlflow server", lambda: urllib.request.urlopen(f"{url}/health", timeout=5).status == 200, 90,
                 [server])
        return url

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.log_dir,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def ray_node(self, name: str, *args: str, cpus: int = 1) -> subprocess.Popen:
        ports = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
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


def submit(cluster, tmp_path, args: list[str], *, wait: bool = True, env_vars: dict | None = None,
           upload: bool = True):
    """`ray job submit` as cluster/README.md says, with the server's port in the runtime env.

    ``upload=False``: the code is imported from this checkout (``PYTHONPATH``), not sent as the
    job's working directory: for nodes that share one temp folder (Ray's fake autoscaling
    nodes), where a node joining mid-job unpacks the working directory again over the one in use.
    """
    runtime_env = yaml.safe_load((ROOT / "cluster" / "runtime_env.yaml").read_text())
    runtime_env["env_vars"].update(env_vars or {})
    # The same ${RAY_HEAD_IP} expansion as on a cloud cluster (the nodes run with RAY_HEAD_IP=127.0.0.1).
    runtime_env["env_vars"]["MLFLOW_TRACKING_URI"] = f"http://${{RAY_HEAD_IP}}:{cluster['mlflow_port']}"
    runtime_env["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    if not upload:
        runtime_env["env_vars"]["PYTHONPATH"] = str(ROOT)
    env_file = tmp_path / "runtime_env.yaml"
    env_file.write_text(yaml.safe_dump(runtime_env))
    submission_id = f"multinode-{time.time_ns()}"
    command = [str(BIN / "ray"), "job", "submit", "--address", cluster["dashboard"], "--submission-id", submission_id,
               *(["--working-dir", str(ROOT)] if upload else []), "--runtime-env", str(env_file),
               *([] if wait else ["--no-wait"]), "--", "python", "run.py" if upload else str(ROOT / "run.py"), *args]
    env = dict(cluster["local"].env)
    try:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        stop_job(cluster, submission_id)
        raise
    return submission_id, done


def stop_job(cluster, submission_id: str) -> None:
    subprocess.run([str(BIN / "ray"), "job", "stop", "--address", cluster["dashboard"], submission_id],
                   env=cluster["local"].env, capture_output=True, timeout=60)
