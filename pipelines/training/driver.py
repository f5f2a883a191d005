"""The driver of one training run: data, an MLflow run, a ``TorchTrainer``, then the multi-view test.

Re-running with the same ``run.name`` resumes (Ray Train V2 resumes when storage path and
name match, and the MLflow run of that name is reopened), and a failed worker group
restarts from the last registered checkpoint up to ``run.max_failures`` times.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import smallbig

from .. import ray_private
from .. import storage as storage_rules
from ..config import ExperimentConfig
from ..data.annotations import read_dataset_folder
from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.epochs import steps_per_epoch
from ..data.folders import clip_spec_for, resolve_data
from ..data.health import TooManyBadVideos
from ..data.manifest import fingerprint
from .checkpoints import checkpoint_location
from .inputs import InputPlan
from .metrics import TEST, TEST_TOP1
from .pause_points import pause_point
from .reporting import log_skipped
from .scoring import TestWorkers
from .step import build_model_for
from .worker import WorkerPlan, train_loop_per_worker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    name: str
    run_id: str | None
    checkpoint: str | None  # folder of the last checkpoint
    metrics: dict  # the last epoch's metrics
    test: dict | None  # multi-view test metrics, when run


@dataclass
class RunData:
    """The dataset of one run and how its clips reach the workers."""

    root: Path
    inputs: InputPlan
    pool: DecodePool  # the whole run's decode pool (split between workers when streaming; the test uses it)
    cpus_per_worker: float
    test_cache: VideoCache | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.inputs.train.classes)


@dataclass
class DatasetCache:
    """Decoded videos of a dataset's three splits, made once and shared by every run of a sweep."""

    train: VideoCache
    val: VideoCache
    test: VideoCache | None = None


def cache_dataset(config: ExperimentConfig, root: Path, pool: DecodePool, *,
                  test: bool = True) -> DatasetCache | None:
    """The dataset decoded once into the object store when ``data.cache`` asks for it (and it fits);
    the decoding runs in the background, while the training workers start."""
    from ..data.cache import cache_videos, should_cache

    splits = {split: read_dataset_folder(root, split) for split in ("train", "val", "test")[: 3 if test else 2]}
    cache, reason = should_cache(config.data.cache, list(splits.values()))
    log.info("%s", reason)
    if not cache:
        return None
    spec = config.data.clip
    made = {split: cache_videos(videos, num_cpus=pool.num_cpus, min_side=spec.min_side, max_aspect=spec.max_aspect,
                                label_selector=pool.label_selector)
            for split, videos in splits.items()}
    return DatasetCache(**made)


def run_name(config: ExperimentConfig) -> str:
    return config.run.name or f"{config.preset}-{config.model.name}"


def prepare_data(config: ExperimentConfig, cluster_cpus: float, cache: DatasetCache | None = None, *,
                 run_test: bool = True) -> RunData:
    """The run's videos, decode pool and CPUs per worker; the clips cached first if ``data.cache`` says so
    (a sweep passes the cache it made once for all its trials)."""
    from ..cluster import worker_resources
    from ..data.health import remote_tallies

    root = resolve_data(config.data.path, config.run.storage, config.data.synthetic)
    config.data.clip = clip_spec_for(config.data.clip, root)  # the dataset's flip map, when it has one
    if cache is None:
        cache = cache_dataset(config, root, worker_resources(config, cluster_cpus, cached=True)[1], test=run_test)
    cpus, pool = worker_resources(config, cluster_cpus, cached=cache is not None)
    train, val = read_dataset_folder(root, "train"), read_dataset_folder(root, "val")
    bad = config.data.max_bad_fraction
    health = remote_tallies({"train": (len(train), train.source), "val": (len(val), val.source)}, bad)
    inputs = InputPlan(train, val, health["train"], health["val"],
                       pool=None if cache else pool.per_worker(config.run.workers),
                       train_cache=cache.train if cache else None, val_cache=cache.val if cache else None)
    return RunData(root, inputs, pool, cpus, cache.test if cache else None)


def open_tracking(config: ExperimentConfig, data: RunData, *, parent_run_id: str | None,
                  extra_tags: dict[str, str] | None):
    """The run's MLflow client, URI and run id (reopened on resume)."""
    import ray
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    from ..tracking import check_store_reachable, get_experiment_id, open_run, tracking_uri

    uri = tracking_uri(config.run.storage)
    check_store_reachable(uri, nodes=sum(1 for node in ray.nodes() if node.get("Alive")))
    client = MlflowClient(tracking_uri=uri)
    experiment_id = get_experiment_id(client, config.run.experiment, config.run.storage)
    tags = {"preset": config.preset, "model": config.model.name, "dataset": str(data.root),
            "dataset_fingerprint": fingerprint(data.root) or "none", **(extra_tags or {})}
    run_id, resumed = open_run(client, experiment_id, run_name(config), tags, parent_id=parent_run_id)
    if resumed and extra_tags:  # they describe this attempt (a sweep's trial driver node, say)
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in extra_tags.items()])
    return client, uri, run_id


def log_run_params(client, run_id: str, config: ExperimentConfig, classes: int) -> None:
    """The config as params, with the model's parameter count and GMACs, once (a resumed run has them).

    ``fit`` runs this beside the trainer's start-up: counting GMACs takes seconds of one core
    while the trainer's processes import torch on the other.
    """
    from ..tracking import flatten, log_params

    if "model.gmacs" in client.get_run(run_id).data.params:
        return
    model = build_model_for(config, classes, inflate=False)  # only counted here
    params = flatten(config.to_dict())
    params["model.params"] = smallbig.count_parameters(model)
    params["model.gmacs"] = round(smallbig.count_gmacs(model, frames=config.data.clip.frames,
                                                       size=config.data.clip.crop), 4)
    log_params(client, run_id, params)


def make_trainer(config: ExperimentConfig, data: RunData, callbacks: list, label: str = ""):
    import ray.train
    from ray.train.torch import TorchTrainer

    from ..cluster import TRAIN_LABEL_SELECTOR

    world = config.run.workers
    plan = WorkerPlan(config.to_dict(), data.classes, world,
                      steps_per_epoch(len(data.inputs.train), config.data.batch_size, world), data.inputs,
                      data.cpus_per_worker, label, run_name(config))
    resources = {"CPU": data.cpus_per_worker, **config.cluster.worker_resources}
    if config.run.gpus_per_worker:
        resources["GPU"] = config.run.gpus_per_worker
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"plan": plan},
        scaling_config=ray.train.ScalingConfig(
            num_workers=world, use_gpu=config.run.gpus_per_worker > 0, resources_per_worker=resources,
            label_selector=TRAIN_LABEL_SELECTOR if data.pool.label_selector else None),
        run_config=ray.train.RunConfig(
            name=run_name(config), storage_path=storage_rules.resolve(config.run.storage),
            failure_config=ray.train.FailureConfig(max_failures=config.run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.run.checkpoints_to_keep),
            callbacks=callbacks),
    )
    return ray_private.trainer_not_retrying(trainer, (TooManyBadVideos,))  # the same files would stop a retry


def registered_epochs(config: ExperimentConfig) -> list[dict]:
    """The metrics of the epochs Ray Train registered for this run name in an earlier invocation
    (the checkpoints it kept), read from the run folder; none on a first run."""
    import ray.train

    folder = storage_rules.join(storage_rules.resolve(config.run.storage), run_name(config))
    try:
        previous = ray.train.Result.from_path(folder)
    except RuntimeError:  # no such run folder, or no checkpoint registered in it yet
        return []
    except OSError as error:  # storage that cannot be read now: Ray Train's own restore will say more
        log.warning("could not read the checkpoints registered in %s: %s", folder, error)
        return []
    return [metrics for _, metrics in previous.best_checkpoints or []]


def tested(client, run_id: str) -> dict | None:
    """The test metrics already logged to ``run_id`` (the test logs them last), or None."""
    metrics = client.get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(TEST)} if TEST_TOP1 in metrics else None


def test_workers(config: ExperimentConfig, data: RunData) -> TestWorkers:
    """The multi-view test's workers: as many as trained, each with a training worker's resources."""
    from ..cluster import TRAIN_LABEL_SELECTOR

    return TestWorkers(config.run.workers, data.cpus_per_worker, config.run.gpus_per_worker,
                       threads=config.run.threads, resources=config.cluster.worker_resources,
                       label_selector=TRAIN_LABEL_SELECTOR if data.pool.label_selector else None)


def run_the_test(config: ExperimentConfig, data: RunData, checkpoint: str, client, run_id: str) -> dict:
    """The multi-view test of the run's last checkpoint on its workers' resources, logged to its run
    with how many workers scored it and how long it took (``test_workers``, ``test_seconds``)."""
    from .testing import evaluate_checkpoint, log_report

    workers, start = test_workers(config, data), time.perf_counter()
    report = evaluate_checkpoint(checkpoint, data.root, "test", batch_size=config.data.batch_size,
                                 pool=data.pool, cache=data.test_cache, workers=workers)
    report.metrics.update(test_workers=float(workers.count), test_seconds=time.perf_counter() - start)
    log_report(client, run_id, report)
    return report.metrics


def fit(config: ExperimentConfig, *, run_test: bool = True, parent_run_id: str | None = None,
        extra_tags: dict[str, str] | None = None, cluster_cpus: float | None = None,
        callbacks: list | None = None, cache: DatasetCache | None = None, label: str = "") -> TrainResult:
    """Train ``config`` on the Ray cluster this process is connected to; resume if ``run.name`` ran before.

    ``cluster_cpus`` is the share of the cluster's CPUs this run may size itself to (all of
    them by default; a sweep running trials side by side passes each its share), and
    ``callbacks`` are more Ray Train callbacks, and
    ``cache`` the decoded dataset when the caller made it (a sweep makes it once for all trials),
    ``label`` what the console lines call the run (a sweep's row; none for a lone run).
    """
    import ray

    from ..tracking import log_metrics
    from .reporting import EpochReporter
    if cluster_cpus is None:
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
    data = prepare_data(config, cluster_cpus, cache, run_test=run_test)
    client, uri, run_id = open_tracking(config, data, parent_run_id=parent_run_id, extra_tags=extra_tags)
    reporter = EpochReporter(uri, run_id, config.optim.epochs, label, run=run_name(config))
    trainer = make_trainer(config, data, [reporter, *(callbacks or [])], label)
    background = ThreadPoolExecutor(1, thread_name_prefix="params")
    try:
        params = background.submit(log_run_params, client, run_id, config, len(data.classes))
        reporter.catch_up(registered_epochs(config))
        try:
            result = trainer.fit()
        except Exception as error:  # Ray Train's TrainingFailedError, with what each worker raised
            log_skipped(client, run_id, data.inputs, failing=True)
            stop = next((e for e in ray_private.base_errors(error) if isinstance(e, TooManyBadVideos)), None)
            if stop is None:
                raise
            raise stop from None  # the data's fault: one message naming the offenders, no traceback
        log_skipped(client, run_id, data.inputs)
        params.result()
        decoders = {"train_decoders_started": data.inputs.train_health.starts(),
                    "val_decoders_started": data.inputs.val_health.starts()}
        # once per invocation, not per epoch (the point of the design); a resumed run adds a step
        log_metrics(client, run_id, decoders, step=len(client.get_metric_history(run_id, "train_decoders_started")))
        checkpoint = None
        if result.checkpoint is not None:
            checkpoint = checkpoint_location(result.checkpoint, storage_rules.resolve(config.run.storage))
        test = None
        if run_test and checkpoint is not None:
            test = tested(client, run_id)  # a run stopped after its test was logged is not tested twice
            if test is None:
                pause_point(run_name(config), "test")
                test = run_the_test(config, data, checkpoint, client, run_id)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        background.shutdown(wait=True, cancel_futures=True)
        client.set_terminated(run_id, "FAILED")
        raise
    background.shutdown()
    return TrainResult(run_name(config), run_id, checkpoint, {**(result.metrics or {}), **decoders}, test)
