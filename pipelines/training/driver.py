"""Training on Ray Train V2: pure per-epoch functions and a thin ``train_loop_per_worker``.

The driver (:func:`fit`) builds the Ray Datasets and a ``TorchTrainer``; each worker
builds the model, restores the last checkpoint if there is one, and for every epoch
trains on its shard, validates on the centre clip, reports metrics and a checkpoint.
Rank 0 logs to MLflow. Re-running with the same ``run.name`` resumes (Ray Train V2
resumes when storage path and name match), and a failed worker group restarts from
the last checkpoint up to ``run.max_failures`` times.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F

import smallbig

from .data import ClipBatch, iter_clip_batches
from .experiment import ExperimentConfig
from .metrics import ClassificationMeter

CHECKPOINT_FILE = "state.pt"


# ------------------------------------------------------------------ pure pieces (no Ray)

def build_model_for(config: ExperimentConfig, num_classes: int, *, inflate: bool = True) -> torch.nn.Module:
    """The experiment's model, inflated from 2D weights when ``model.init_2d`` names a file (and ``inflate``)."""
    model = smallbig.build_model(config.model.name, num_classes=num_classes,
                                 num_frames=config.data.clip.frames, **config.model.options)
    if inflate and config.model.init_2d:
        state = torch.load(config.model.init_2d, map_location="cpu", weights_only=True)
        report = smallbig.load_2d_weights(model, state.get("state_dict", state))
        print(f"init from {config.model.init_2d}: {report.summary()}", flush=True)
    return model


def cosine_with_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """Per-step schedule: linear warmup from ~0 to the base lr, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision on GPU only: bf16 where supported (auto), or fp16 with a GradScaler."""
    if device.type != "cuda" or mode == "none":
        return None
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def train_epoch(model: torch.nn.Module, batches: Iterable[ClipBatch], optimizer: torch.optim.Optimizer,
                scheduler, scaler: torch.amp.GradScaler, *, num_classes: int, device: torch.device,
                dtype: torch.dtype | None, label_smoothing: float = 0.0,
                memory_format=torch.contiguous_format, progress=None) -> dict[str, float]:
    """One pass over ``batches``; returns train loss, top-1/top-5, clips/s and the last lr.

    ``progress(step, loss)``, when given, is called after every step (a console display).
    """
    model.train()
    meter, clips, start = ClassificationMeter(num_classes), 0, time.perf_counter()
    for batch in batches:
        x = batch.clips.contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), batch.labels, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        meter.update(logits, batch.labels, loss.item())
        clips += len(batch.labels)
        if progress is not None:
            progress(clips, loss.item())
    elapsed = time.perf_counter() - start
    meter.all_reduce()
    metrics = meter.compute("train_")
    metrics.pop("train_mean_class_acc")
    metrics["train_clips_per_s"] = meter.sums[3].item() / max(elapsed, 1e-9)
    metrics["lr"] = optimizer.param_groups[0]["lr"]
    return metrics


@torch.no_grad()
def predict_batches(model: torch.nn.Module, batches: Iterable[ClipBatch], *, device: torch.device,
                    dtype: torch.dtype | None = None, memory_format=torch.contiguous_format):
    """Yield (softmax scores, labels, video ids) for each batch, in eval mode."""
    model.eval()
    for batch in batches:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(batch.clips.contiguous(memory_format=memory_format))
        yield logits.float().softmax(dim=1).cpu(), batch.labels.cpu(), batch.videos.cpu()


def evaluate(model: torch.nn.Module, batches: Iterable[ClipBatch], *, num_classes: int, device: torch.device,
             dtype: torch.dtype | None = None, memory_format=torch.contiguous_format) -> ClassificationMeter:
    """Top-k and confusion of one view per clip (the per-epoch validation on the centre clip)."""
    meter = ClassificationMeter(num_classes)
    for scores, labels, _ in predict_batches(model, batches, device=device, dtype=dtype, memory_format=memory_format):
        meter.update(scores, labels, F.nll_loss(scores.clamp_min(1e-12).log(), labels).item())
    return meter


def save_checkpoint(folder: str | Path, *, model, optimizer, scheduler, scaler, epoch: int,
                    classes: list[str], config: dict) -> Path:
    path = Path(folder) / CHECKPOINT_FILE
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "classes": list(classes), "config": config}, path)
    return path


def load_checkpoint(folder: str | Path) -> dict:
    """A checkpoint folder on this machine, or a URI (``s3://``, ``gs://``, ``file://``) read with pyarrow."""
    location = str(folder)
    if "://" not in location:
        return torch.load(Path(folder) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    import io

    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(f"{location.rstrip('/')}/{CHECKPOINT_FILE}")
    with filesystem.open_input_stream(path) as handle:
        return torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=False)


# ------------------------------------------------------------------ inside a Ray Train worker

def _console_progress(epoch: int, epochs: int, loop: dict, every_s: float = 15.0):
    """Rank 0's progress line: clips done of the epoch and the running loss, every ``every_s`` seconds."""
    expected = loop["steps_per_epoch"] * loop["world_size"] * loop["experiment"]["data"]["batch_size"]
    start = last = time.perf_counter()

    def show(clips_done: int, loss: float) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            done = clips_done * loop["world_size"]
            print(f"epoch {epoch + 1}/{epochs}  ~{min(100, 100 * done // max(1, expected))}% "
                  f"({done} clips, {done / (now - start):.1f} clips/s)  loss {loss:.3f}", flush=True)

    return show


def worker_node_ids() -> list[str]:
    """The Ray node id of every training worker, by rank. A collective when torch.distributed is
    initialised (every rank must call it); the caller's own node otherwise."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    if not torch.distributed.is_initialized():
        return [node]
    nodes: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(nodes, node)
    return nodes


def train_loop_per_worker(loop: dict) -> None:
    import ray.train
    import ray.train.torch

    from .tracking import log_metrics

    config = ExperimentConfig.from_dict(loop["experiment"])
    classes: list[str] = loop["classes"]
    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(config.run.seed + rank)
    device = ray.train.torch.get_device()
    memory_format = torch.channels_last_3d if config.model.channels_last else torch.contiguous_format
    dtype = amp_dtype(config.optim.amp, device)

    checkpoint = ray.train.get_checkpoint()  # when resuming, its weights replace any 2D initialisation
    model = build_model_for(config, len(classes), inflate=checkpoint is None)
    model = model.to(device).to(memory_format=memory_format)
    global_batch = config.data.batch_size * loop["world_size"]
    optimizer = torch.optim.SGD(model.parameters(), lr=config.optim.scaled_lr(global_batch),
                                momentum=config.optim.momentum, weight_decay=config.optim.weight_decay)
    steps = loop["steps_per_epoch"]
    scheduler = cosine_with_warmup(optimizer, steps * config.optim.epochs, int(steps * config.optim.warmup_epochs))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    start_epoch = 0
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(folder)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch = state["epoch"] + 1
        if rank == 0:
            print(f"resuming from epoch {start_epoch}", flush=True)
    if rank == 0 and loop.get("train_health") is not None:
        ray.get(loop["train_health"].rewind.remote(start_epoch))  # same clips as an uninterrupted run
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    ddp_model = ray.train.torch.prepare_model(model, move_to_device=False)

    client = None
    node_ids = worker_node_ids()  # every rank takes part
    if rank == 0 and loop.get("mlflow_run_id"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=loop["tracking_uri"])
        # Where this attempt trains, by rank; a restarted worker group overwrites it with its own nodes.
        client.set_tag(loop["mlflow_run_id"], "train_node_ids", ",".join(node_ids))

    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    for epoch in range(start_epoch, config.optim.epochs):
        batches = iter_clip_batches(train_shard, config.data.batch_size, device=device)
        metrics = train_epoch(ddp_model, batches, optimizer, scheduler, scaler, num_classes=len(classes),
                              device=device, dtype=dtype, label_smoothing=config.optim.label_smoothing,
                              memory_format=memory_format,
                              progress=_console_progress(epoch, config.optim.epochs, loop) if rank == 0 else None)
        val = evaluate(model, iter_clip_batches(val_shard, config.data.batch_size, device=device),
                       num_classes=len(classes), device=device, dtype=dtype, memory_format=memory_format)
        metrics.update(val.all_reduce().compute("val_"))
        metrics["epoch"] = epoch
        if rank == 0 and loop.get("train_health") is not None:
            health = ray.get(loop["train_health"].summary.remote(epoch))
            metrics["clips_served"] = float(health["clips_served"])
            metrics["videos_skipped"] = float(health["videos_skipped"])
            for reason, count in health["skipped_by_reason"].items():
                print(f"epoch {epoch + 1}: skipped {count} video(s): {reason}", flush=True)
        if rank == 0:
            print(f"epoch {epoch + 1}/{config.optim.epochs}  loss {metrics['train_loss']:.3f}  "
                  f"train top-1 {metrics['train_top1']:.1f}  val top-1 {metrics['val_top1']:.1f}  "
                  f"top-5 {metrics['val_top5']:.1f}  mean class {metrics['val_mean_class_acc']:.1f}  "
                  f"{metrics['train_clips_per_s']:.1f} clips/s  lr {metrics['lr']:.4f}", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            reported = None
            if rank == 0:
                save_checkpoint(folder, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                                epoch=epoch, classes=classes, config=config.to_dict())
                reported = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=reported)
        if client is not None:  # after the checkpoint is stored: a restarted epoch is logged once
            log_metrics(client, loop["mlflow_run_id"], metrics, step=epoch)


# ------------------------------------------------------------------ the driver

@dataclass
class TrainResult:
    name: str
    run_id: str | None
    checkpoint: str | None  # folder of the last checkpoint
    metrics: dict  # the last epoch's metrics
    test: dict | None  # multi-view test metrics, when run


def worker_resources(config: ExperimentConfig, cluster_cpus: float, *, total_cpus: float | None = None,
                     decode_cpus: float | None = None) -> tuple[float, "DecodePool"]:
    """CPUs per training worker and a decode pool that fit together (ARCHITECTURE.md section 4).

    On GPUs a worker needs little CPU; on CPUs half the machine trains and half decodes,
    so the decode actors always find room (a pool that cannot start hangs the run). On a
    cluster with decode nodes (``DECODE_LABEL``) the decoders have those to themselves and
    training gets the CPUs of the other nodes; a run given a share of the cluster
    (``cluster_cpus`` of ``total_cpus``, a sweep's trials side by side) gets the same share
    of each kind, and at least one decode CPU.
    """
    from .data import decode_node_cpus, fit_decode_pool

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
        train_cpus = cluster_cpus / 2
    if config.run.cpus_per_worker is not None:
        cpus = config.run.cpus_per_worker
    elif config.run.gpus_per_worker > 0:
        cpus = 1.0
    else:
        cpus = max(0.25, min(1.0, train_cpus / workers))
    return cpus, fit_decode_pool(workers, cpus, cluster_cpus, decode_cpus=decode_cpus)


def storage_path(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def checkpoint_location(checkpoint, storage: str) -> str:
    """Where a Ray Train checkpoint lives, as :func:`load_checkpoint` reads it: a folder, or a URI
    when ``storage`` is one (Ray gives the path inside the bucket, without its scheme)."""
    if "://" not in storage or "://" in checkpoint.path:
        return checkpoint.path
    return f"{storage.split('://', 1)[0]}://{checkpoint.path}"  # s3://bucket/..., file:///abs/...


def fit(config: ExperimentConfig, *, run_test: bool = True, parent_run_id: str | None = None,
        extra_tags: dict[str, str] | None = None, cluster_cpus: float | None = None,
        callbacks: list | None = None) -> TrainResult:
    """Train ``config`` on the Ray cluster this process is connected to; resume if ``run.name`` ran before.

    ``cluster_cpus`` is the share of the cluster's CPUs this run may size itself to (all of
    them by default; a sweep running trials side by side passes each its share), and
    ``callbacks`` are Ray Train callbacks (a sweep passes Tune's report callback).
    """
    import ray
    import ray.train
    from mlflow.tracking import MlflowClient
    from ray.train.torch import TorchTrainer

    from .annotations import read_dataset_folder
    from .data import TRAIN_LABEL_SELECTOR, build_dataset
    from .datasets import resolve_data
    from .tracking import check_store_reachable, flatten, get_experiment_id, log_params, open_run, tracking_uri

    storage = storage_path(config.run.storage)
    name = config.run.name or f"{config.preset}-{config.model.name}"
    root = resolve_data(config)
    train_videos, val_videos = read_dataset_folder(root, "train"), read_dataset_folder(root, "val")
    classes = list(train_videos.classes)
    if cluster_cpus is None:
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
    cpus, pool = worker_resources(config, cluster_cpus)
    spec = config.data.clip
    train = build_dataset(train_videos, spec, "train", pool=pool, max_bad_fraction=config.data.max_bad_fraction)
    val = build_dataset(val_videos, spec, "eval", pool=pool, max_bad_fraction=config.data.max_bad_fraction)

    uri = tracking_uri(config.run.storage)
    check_store_reachable(uri, nodes=sum(1 for node in ray.nodes() if node.get("Alive")))
    client = MlflowClient(tracking_uri=uri)
    experiment_id = get_experiment_id(client, config.run.experiment, config.run.storage)
    tags = {"preset": config.preset, "model": config.model.name, "dataset": str(root), **(extra_tags or {})}
    run_id, resumed = open_run(client, experiment_id, name, tags, parent_id=parent_run_id)
    if resumed and extra_tags:  # they describe this attempt (a sweep's trial driver node, say)
        from mlflow.entities import RunTag

        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in extra_tags.items()])
    model = build_model_for(config, len(classes), inflate=False)  # only counted here
    params = flatten(config.to_dict())
    params["model.params"] = smallbig.count_parameters(model)
    params["model.gmacs"] = round(smallbig.count_gmacs(model, frames=spec.frames, size=spec.crop), 4)
    log_params(client, run_id, params)

    world = config.run.workers
    loop = {
        "experiment": config.to_dict(), "classes": classes, "world_size": world,
        "steps_per_epoch": max(1, math.ceil(len(train_videos) / (config.data.batch_size * world))),
        "train_health": train.health, "tracking_uri": uri, "mlflow_run_id": run_id,
    }
    resources = {"CPU": cpus}
    if config.run.gpus_per_worker:
        resources["GPU"] = config.run.gpus_per_worker
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop,
        scaling_config=ray.train.ScalingConfig(num_workers=world, use_gpu=config.run.gpus_per_worker > 0,
                                               resources_per_worker=resources,
                                               label_selector=TRAIN_LABEL_SELECTOR if pool.label_selector else None),
        run_config=ray.train.RunConfig(
            name=name, storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=config.run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.run.checkpoints_to_keep),
            callbacks=callbacks),
        datasets={"train": train.dataset, "val": val.dataset},
    )
    try:
        result = trainer.fit()
        checkpoint = checkpoint_location(result.checkpoint, storage) if result.checkpoint is not None else None
        test = None
        if run_test and checkpoint is not None:
            from .evaluate import evaluate_checkpoint, log_report

            report = evaluate_checkpoint(checkpoint, root, "test", batch_size=config.data.batch_size, pool=pool)
            log_report(client, run_id, report)
            test = report.metrics
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return TrainResult(name, run_id, checkpoint, dict(result.metrics or {}), test)
