"""Connecting to Ray: a local instance on a laptop, or the cluster named by --address / RAY_ADDRESS."""
from __future__ import annotations

import os


def start_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start Ray on this machine.

    Variables the workers need (the MLflow store) travel in the job's runtime environment.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    # Train V2 copies a worker's print() into its logger; under Tune both reach the console.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    passed = ("MLFLOW_TRACKING_URI", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PRINT_PATCH")
    env = {k: os.environ[k] for k in passed if k in os.environ}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, runtime_env={"env_vars": env})
