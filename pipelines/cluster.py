"""Ray's side of a run: joining or starting Ray, and sizing work to the CPUs and GPUs it has.

On one machine the training workers and the decode actors share the CPUs, and a decode pool
that cannot start makes the run hang without an error, so every size here is derived from
what the cluster has (``ray.cluster_resources()``), never hard-coded: CPUs per training
worker and the decode pool (:func:`worker_resources`), and trials side by side in a sweep
(:func:`plan_concurrency`). On a cluster whose CPU nodes carry :data:`DECODE_LABEL`
(``cluster/*.yaml``), decode actors are pinned there and training workers kept off them.

Ray forwards every worker's output to the driver's console. :func:`start_ray` with
``route_output`` hands it to the driver's ``logging`` instead: our own lines, marked in each
worker (:func:`remote_logging`, Ray's worker setup hook), become the records they were, and
Ray's own lines records of :data:`RAY_WORKERS_LOGGER` (:func:`route_worker_output`); the
command line then decides what reaches the console and what only its log file.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import sys

from .config import ExperimentConfig
from .data.dataset import DecodePool
from .errors import UsageError

# Node label of the CPU nodes meant for decoding (set on the CPU worker types in cluster/).
DECODE_LABEL = {"smallbig/role": "decode"}
# Where training workers go when the cluster has decode nodes: anywhere else.
TRAIN_LABEL_SELECTOR = {"smallbig/role": "!decode"}

# Ray Train's switch for its preemption watcher (off on a Ray this process starts: see start_ray).
PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"

# Our log lines in Ray's worker processes carry this mark, their level and their logger's name,
# so that the driver tells them from Ray's own output (start_ray(route_output=True)).
REMOTE_MARK = "\x1epipelines"
# The logger of in-flight progress (a training epoch's clips): JSON for the driver's progress bars.
PROGRESS_LOGGER = "pipelines.progress"
# The logger Ray's own forwarded worker lines are given to on the driver (not under "ray", whose
# handler prints to the console).
RAY_WORKERS_LOGGER = "ray_workers"
_ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|\bERROR\b|^\s*\w*(Error|Exception): ")
# decord's C++ log lines ("[12:00:00] .../video_reader.cc:83: ERROR opening: x.mp4, ..."): a file
# it cannot open is ours to report (skipped, counted and named), so they are not errors here.
_DECODER_LOG_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+\.cc:\d+: ")


def start_ray(address: str | None = None, *, num_cpus: int | None = None, route_output: bool = False,
              verbose: bool = False, dashboard: bool = False):
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start Ray on this machine.

    A Ray started here runs its dashboard only when ``dashboard`` is asked for: without its nine
    module processes a two-row smoke sweep took 83 s instead of 98 s on 2 cores (means of 3 and
    5 runs), and our console and MLflow already show a run's progress. It then serves on
    127.0.0.1 only (to open it to a network, start Ray yourself, ``ray start --head
    --dashboard-host ...``, and pass ``--address``). Variables the workers need (the MLflow
    store) travel in the job's runtime environment. Inside a submitted job (``ray job submit
    --runtime-env ...``) the job's own variables already reach every worker, and Ray refuses to
    set one twice: those are not passed again.

    ``route_output``: the workers' output reaches this process's ``logging`` instead of its
    console (:func:`route_worker_output`; ``verbose`` prints Ray's own lines as well), so the
    command line decides what a person sees and what goes to its log file.
    Returns Ray's context (its ``dashboard_url`` among others), or None when Ray was already up.
    """
    import ray

    if ray.is_initialized():
        return None
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    # Train V2 copies a worker's print() into its logger; under Tune both reach the console.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        # Ray Train watches for nodes a cloud is about to reclaim with an actor per run; a Ray
        # started on this machine has no such node, and the watcher would cost a process per run.
        os.environ.setdefault(PREEMPTION_WATCHER, "0")
    passed = ("MLFLOW_TRACKING_URI", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PRINT_PATCH",
              "RAY_DATA_DISABLE_PROGRESS_BARS", PREEMPTION_WATCHER)
    job_env = job_env_vars()
    runtime_env = {"env_vars": {k: os.environ[k] for k in passed if k in os.environ and k not in job_env}}
    if route_output:  # our lines in every worker process marked for route_worker_output
        runtime_env["worker_process_setup_hook"] = "pipelines.cluster.remote_logging"
    if address:
        context = ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        context = ray.init(num_cpus=num_cpus, runtime_env=runtime_env, include_dashboard=dashboard,
                           dashboard_host="127.0.0.1")
    if route_output:
        route_worker_output(verbose)
    return context


def job_env_vars() -> dict[str, str]:
    """The environment variables of the submitted job this process is the driver of ({} otherwise)."""
    config = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    return dict((config.get("runtime_env") or {}).get("env_vars") or {})


def decode_node_cpus() -> float:
    """CPUs of the live nodes labelled :data:`DECODE_LABEL`; 0 on one machine or without Ray."""
    import ray

    if not ray.is_initialized():
        return 0.0
    (key, value), = DECODE_LABEL.items()
    return float(sum(node["Resources"].get("CPU", 0) for node in ray.nodes()
                     if node.get("Alive") and node.get("Labels", {}).get(key) == value))


def fit_decode_pool(train_workers: int = 0, cpus_per_worker: float = 1.0, cluster_cpus: float | None = None,
                    batch_size: int = 8, decode_cpus: float | None = None) -> DecodePool:
    """A decode pool that fits in the CPUs the training workers leave free.

    Whole-CPU actors when at least one CPU is free (up to one per free CPU); otherwise two
    actors sharing what is left. ``cluster_cpus`` defaults to ``ray.cluster_resources()``.
    Raises when nothing is left: the run would hang waiting for the pool.

    On a cluster with nodes labelled for decoding (``decode_cpus``, default: asked of Ray),
    the actors are pinned there, one CPU each, up to one per CPU of those nodes; the
    training workers then run elsewhere (:data:`TRAIN_LABEL_SELECTOR`), so they do not count.
    """
    if decode_cpus is None:
        decode_cpus = decode_node_cpus()
    if decode_cpus >= 1:
        return DecodePool(1.0, 1, int(math.floor(decode_cpus + 1e-9)), batch_size, dict(DECODE_LABEL))
    if cluster_cpus is None:
        import ray

        cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    free = cluster_cpus - train_workers * cpus_per_worker
    if free >= 1:
        return DecodePool(1.0, 1, int(math.floor(free + 1e-9)), batch_size)
    if free > 0:
        return DecodePool(round(free / 2, 3), 1, 2, batch_size)
    raise UsageError(f"no CPU left for decoding: {cluster_cpus:g} CPUs, {train_workers} training "
                     f"workers x {cpus_per_worker:g}; give the workers fewer CPUs")


def worker_resources(config: ExperimentConfig, cluster_cpus: float, *, total_cpus: float | None = None,
                     decode_cpus: float | None = None, cached: bool = False) -> tuple[float, "DecodePool"]:
    """CPUs per training worker and a decode pool that fit together.

    With a decoded-clip cache nothing decodes while the workers train, so on CPUs they get
    every CPU of their share (the pool is then only used for the multi-view test, after
    training). On GPUs a worker needs little CPU; on CPUs without a cache half the machine
    trains and half decodes, so the decode actors always find room (a pool that cannot
    start hangs the run). On a
    cluster with decode nodes (``DECODE_LABEL``) the decoders have those to themselves and
    training gets the CPUs of the other nodes; a run given a share of the cluster
    (``cluster_cpus`` of ``total_cpus``, a sweep's trials side by side) gets the same share
    of each kind, and at least one decode CPU.
    """
    workers = config.run.workers
    if decode_cpus is None:
        decode_cpus = decode_node_cpus()
    if decode_cpus >= 1:
        if total_cpus is None:
            import ray

            total_cpus = float(ray.cluster_resources().get("CPU", cluster_cpus))
        share = min(1.0, cluster_cpus / total_cpus) if total_cpus > 0 else 1.0
        train_cpus = (total_cpus - decode_cpus) * share
        decode_cpus = max(1.0, decode_cpus * share)
    else:
        train_cpus = cluster_cpus if cached else cluster_cpus / 2
    if config.run.cpus_per_worker is not None:
        cpus = config.run.cpus_per_worker
    elif config.run.gpus_per_worker > 0:
        cpus = 1.0
    elif cached:
        cpus = max(0.25, train_cpus / workers)
    else:
        cpus = max(0.25, min(1.0, train_cpus / workers))
    pool = fit_decode_pool(0 if cached else workers, cpus, cluster_cpus, decode_cpus=decode_cpus)
    return cpus, pool


def plan_concurrency(base: ExperimentConfig, trials: int, max_concurrent: int | None,
                     resources: dict[str, float] | None = None, *, cached: bool = False) -> tuple[int, float | None]:
    """How many trials run side by side, and the CPU share each sizes itself to.

    On GPUs: as many as the cluster's GPUs hold (every trial, when an autoscaling cluster
    has none yet: their requests are what makes it add GPU nodes). On CPUs: each training
    worker needs a CPU to train and, unless the clips are cached, one to decode, so 2 CPUs
    hold two cached single-worker trials (one's start-up overlaps the other's training) or one
    streaming one.
    """
    if resources is None:
        import ray

        resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    workers = base.run.workers
    if max_concurrent:
        concurrent = max_concurrent
    elif base.run.gpus_per_worker > 0:
        per_trial = workers * base.run.gpus_per_worker
        concurrent = int(gpus // per_trial) if gpus >= per_trial else trials
    else:
        concurrent = int(cpus // (workers if cached else 2 * workers))
    concurrent = max(1, min(concurrent, trials))
    share = None if base.run.gpus_per_worker > 0 else cpus / concurrent
    return concurrent, share


# The console: our lines from the workers, marked, routed on the driver.

class _MarkedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{REMOTE_MARK} {record.levelno} {record.name} {super().format(record)}"


def console_logging(marked: bool = False) -> None:
    """Our INFO lines on this Ray worker process's stdout, which Ray forwards to the driver (Ray
    Train sets up the root logger of its workers for its own files, so a ``basicConfig`` would do
    nothing). ``marked``: each line carries :data:`REMOTE_MARK`, its level and its logger, for the
    driver's :func:`route_worker_output`, and progress records (:data:`PROGRESS_LOGGER`) go too;
    unmarked, progress records go nowhere."""
    logger, progress = logging.getLogger("pipelines"), logging.getLogger(PROGRESS_LOGGER)
    progress.propagate = False
    if any(getattr(h, "_pipelines_console", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_MarkedFormatter("%(message)s") if marked else logging.Formatter("%(message)s"))
    handler._pipelines_console = True
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if marked:
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)


def remote_logging() -> None:
    """Ray's ``worker_process_setup_hook`` for the runs :func:`start_ray` routes: marked lines."""
    console_logging(marked=True)


def route_worker_output(verbose: bool = False) -> None:
    """Hand what Ray forwards from its workers to this process's ``logging``, not to its console.

    Our marked lines become the records they were (their level and logger kept, the mark
    removed); Ray's own lines become INFO records of :data:`RAY_WORKERS_LOGGER` (ERROR for
    errors and tracebacks), its Ray Data progress bars are dropped. With ``verbose`` Ray's lines
    and bars are also printed as Ray prints them. Uses Ray's driver-side log dispatcher (Ray
    2.60); the handler keeps Ray's name, so ``ray.shutdown()`` removes it as it removes Ray's.
    """
    import functools

    from . import ray_private

    show = ray_private.console_printer() if verbose else None
    ray_private.replace_worker_log_handler(functools.partial(_route, show=show))
    if not verbose:  # what the raylet pushes to the driver (worker-pool warnings, dead workers) too
        ray_private.replace_driver_printer(_route)


def _route(data: dict, show=None) -> None:
    """One batch of forwarded lines (one worker, one stream): see :func:`route_worker_output`."""
    from ray.experimental.tqdm_ray import RAY_TQDM_MAGIC

    from .data.health import TooManyBadVideos
    from .ray_private import autoscaler_events

    ray_log = logging.getLogger(RAY_WORKERS_LOGGER)
    name = data.get("actor_name") or data.get("task_name")
    source = f"({name + ' ' if name else ''}pid={data.get('pid')})"
    lines = data.get("lines", [])
    if data.get("pid") == "autoscaler":  # its events, not its status every few seconds (as Ray prints it)
        lines = autoscaler_events(lines)
    theirs, failing = [], False
    # A data stop is said once, by our tally, naming the files; the tracebacks Ray prints as it
    # travels up (decode actor, Ray Data, the training worker, Ray Train) go to the log file only.
    data_stop = any(TooManyBadVideos.__name__ in line for line in lines)
    for line in lines:
        at = line.find(REMOTE_MARK)
        if at >= 0:
            level, logger, message = (line[at + len(REMOTE_MARK):].lstrip().split(" ", 2) + ["", ""])[:3]
            logging.getLogger(logger or "pipelines").log(int(level) if level.isdigit() else logging.INFO, message)
            continue
        theirs.append(line)
        if RAY_TQDM_MAGIC not in line:
            failing = failing or bool(_ERROR_LINE.search(line) and not _DECODER_LOG_LINE.match(line))
            raylet = data.get("pid") == "raylet" and not line.startswith("WARNING")  # its errors
            error = (failing or raylet) and not data_stop
            ray_log.log(logging.ERROR if error else logging.INFO, "%s %s", source, line)
    if show is not None and theirs:
        show({**data, "lines": theirs})
