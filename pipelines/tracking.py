"""MLflow behind a few functions: where the store is, one run per training run, rank-0 logging.

The default store is a sqlite file under the project's run folder, by absolute path (Ray
workers change directory, so a relative path would land inside Ray's session folder);
``MLFLOW_TRACKING_URI`` overrides it everywhere, drivers and workers alike. On a cluster it
names a tracking server (``http://...``), which also keeps the artifacts (``cluster/README.md``).
"""
from __future__ import annotations

import os
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import storage as storage_rules
from .errors import UsageError

RUN_NAME_TAG = "mlflow.runName"
# MLflow 3's UI opens an experiment by its kind; untagged, it guesses GenAI and shows empty trace
# views. This is the value its own kind selector writes for model-training experiments.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def tracking_uri(storage: str = "runs") -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<storage>/mlflow.db`` (absolute).

    A sqlite file cannot live in object storage: with an ``s3://``-style storage and no
    tracking URI the store falls back to the local ``runs`` folder.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = storage_rules.local_folder(storage)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_root(storage: str = "runs") -> str:
    """Where a store on this machine keeps artifacts: ``mlartifacts`` under the run storage."""
    return f"{storage_rules.as_uri(storage)}/mlartifacts"


def is_server(uri: str) -> bool:
    """A tracking server (``http(s)://``), as opposed to a store this process opens itself."""
    return uri.startswith(("http://", "https://"))


def check_store_reachable(uri: str, nodes: int) -> None:
    """Refuse a store on this machine's disk when the run spans several nodes.

    Rank 0 of the training workers logs the epochs and may run on another node, where a
    ``sqlite:`` or ``file:`` path is a different (or no) file: its metrics would be lost.
    """
    if nodes > 1 and not is_server(uri) and not uri.startswith("databricks"):
        raise UsageError(f"MLflow store {uri!r} is a file on this node, but the cluster has {nodes} nodes; "
                         f"set MLFLOW_TRACKING_URI to a tracking server that every node can reach "
                         f"(see cluster/README.md)")


def get_experiment_id(client: MlflowClient, name: str, storage: str = "runs") -> str:
    """The experiment's id, creating it with an explicit (absolute) artifact location.

    A tracking server chooses the location itself (its ``--artifacts-destination``, served
    through it), so no node needs its own access to the artifact store.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND[0] not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
        return experiment.experiment_id
    tags = dict([EXPERIMENT_KIND])
    try:
        if is_server(client.tracking_uri):
            return client.create_experiment(name, tags=tags)
        return client.create_experiment(name, artifact_location=f"{artifact_root(storage)}/{name}", tags=tags)
    except MlflowException:
        raced = client.get_experiment_by_name(name)  # another process (a sweep's trial) created it first
        if raced is None:
            raise  # a real failure: the store's own error, not a lookup of nothing
        return raced.experiment_id


def find_run(client: MlflowClient, experiment_id: str, name: str, parent_id: str | None = None):
    """The newest run called ``name`` (under ``parent_id`` if given), or None."""
    query = f"tags.`{RUN_NAME_TAG}` = '{name}'"
    if parent_id:
        query += f" and tags.`mlflow.parentRunId` = '{parent_id}'"
    runs = client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=1)
    return runs[0] if runs else None


def open_run(client: MlflowClient, experiment_id: str, name: str, tags: dict[str, str] | None = None,
             parent_id: str | None = None) -> tuple[str, bool]:
    """The run called ``name``, reopened if it exists (a resumed training run), else created.

    Returns ``(run_id, resumed)``. Reusing the run keeps one MLflow run per training run.
    """
    existing = find_run(client, experiment_id, name, parent_id)
    tags = dict(tags or {})
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    if existing is not None:
        client.update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id, True
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    return run.info.run_id, False


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": "0.1"}`` (MLflow params are flat strings)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)[:6000]
    return flat


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Log params once; a resumed run already has them (MLflow refuses to change a param)."""
    logged = client.get_run(run_id).data.params
    new = [Param(k, str(v)) for k, v in params.items() if k not in logged]
    for start in range(0, len(new), 100):
        client.log_batch(run_id, params=new[start:start + 100])


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int) -> None:
    import time

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
    if batch:
        client.log_batch(run_id, metrics=batch)
