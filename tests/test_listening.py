"""Servers we start listen on this machine only, unless the user asks otherwise."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_hosts(port: int, timeout: float = 240.0) -> set[str]:
    # MLflow 3's server took 40 s to listen on a lightly loaded 2-core machine and over 90 s while
    # other jobs ran (measured): the wait is generous, it is not a speed check.
    deadline = time.time() + timeout
    while time.time() < deadline:
        hosts = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        if hosts:
            return hosts
        time.sleep(0.5)
    pytest.fail(f"nothing listened on port {port} within {timeout:.0f} s")


def test_the_mlflow_ui_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = subprocess.Popen([sys.executable, "run.py", "ui", "--storage", str(tmp_path), "--port", str(port)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        assert listening_hosts(port) == {"127.0.0.1"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)


def test_a_ray_started_here_serves_its_dashboard_on_loopback_only_when_asked():
    ray = pytest.importorskip("ray")
    from pipelines.cluster import start_ray

    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    context = start_ray(num_cpus=1, dashboard=True)
    try:
        host, _, port = context.dashboard_url.rpartition(":")
        assert host == "127.0.0.1"
        assert listening_hosts(int(port)) == {"127.0.0.1"}
    finally:
        ray.shutdown()
