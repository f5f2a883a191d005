"""Inside each Ray Train worker: restore, then for every epoch train, validate and report.

The worker gets a typed :class:`WorkerPlan` from the driver and runs a :class:`TrainLoop`,
whose methods are the steps of an epoch; its clips come from ``inputs.WorkerInputs``, opened
once per run. A report is what makes an epoch count: its metrics
reach MLflow from the controller only once Ray has registered the report's checkpoint
(``pipelines.training.reporting``), and the loop waits for that registration before it starts
the next epoch. So whenever a worker dies, the epochs that count are exactly those whose
checkpoint Ray knows, a restarted worker group resumes after the last of them, and no epoch
is logged twice.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass

import torch

from ..cluster import console_logging
from ..config import ExperimentConfig
from ..data.health import data_stop_in
from .checkpoints import load_checkpoint, save_checkpoint
from .inputs import InputPlan, WorkerInputs
from .metrics import VAL
from .pause_points import pause_point
from .reporting import EpochProgress
from .step import amp_dtype, build_model_for, cosine_with_warmup, make_optimizer, train_epoch, validate

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class WorkerPlan:
    """What every worker needs from the driver (it crosses process boundaries, so plain fields)."""

    experiment: dict  # ExperimentConfig.to_dict()
    classes: list[str]
    world_size: int
    steps_per_epoch: int  # full batches per worker per epoch (incomplete ones are dropped)
    inputs: InputPlan
    cpus_per_worker: float = 1.0  # the CPUs Ray reserves for each worker
    label: str = ""  # what the console calls this run (a sweep's row)
    run: str = "run"  # the run's name (Ray Train's and MLflow's), as the driver resolved it

    @property
    def config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(self.experiment)


class TrainLoop:
    """One worker's model, optimizer and schedule, and the steps of an epoch as short methods."""

    def __init__(self, plan: WorkerPlan) -> None:
        import ray.train
        import ray.train.torch

        self.plan, self.config = plan, plan.config
        self.rank = ray.train.get_context().get_world_rank()
        torch.manual_seed(self.config.run.seed + self.rank)
        self.device = ray.train.torch.get_device()
        if self.device.type == "cpu":
            torch.set_num_threads(self.config.run.threads)  # fixed: see RunSection.threads
        self.inputs = WorkerInputs(plan.inputs, self.config.data.clip, rank=self.rank, world=plan.world_size,
                                   batch_size=self.config.data.batch_size, steps_per_epoch=plan.steps_per_epoch,
                                   device=self.device)
        self.memory_format = torch.channels_last_3d if self.config.model.channels_last else torch.contiguous_format
        self.dtype = amp_dtype(self.config.optim.amp, self.device)
        self.checkpoint = ray.train.get_checkpoint()  # when resuming, its weights replace any 2D init
        model = build_model_for(self.config, len(plan.classes), inflate=self.checkpoint is None)
        self.model = model.to(self.device).to(memory_format=self.memory_format)
        optim = self.config.optim
        self.optimizer = make_optimizer(self.model, optim, self.config.data.batch_size * plan.world_size)
        steps = plan.steps_per_epoch
        self.scheduler = cosine_with_warmup(self.optimizer, steps * optim.epochs, int(steps * optim.warmup_epochs))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.start_epoch = 0
        self.first_batch_time: float | None = None  # when rank 0 trained its first batch of this attempt

    @property
    def run_name(self) -> str:
        return self.plan.run

    def restore(self) -> None:
        """Load the last registered checkpoint (if any): training goes on from the epoch after it."""
        if self.checkpoint is not None:
            with self.checkpoint.as_directory() as folder:
                state = load_checkpoint(folder)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            self.start_epoch = state["epoch"] + 1
            if self.rank == 0:
                log.info("resuming from epoch %d", self.start_epoch)
        if torch.distributed.is_initialized():
            torch.distributed.barrier()

    def train(self, ddp_model, batches, epoch: int) -> dict[str, float]:
        """One epoch of this worker's full batches (incomplete ones were dropped: a one-clip batch
        cannot be batch-normalised where maps are 1x1), as PySlowFast and MMAction2 do."""
        bar = None
        if self.rank == 0:
            plan = self.plan
            bar = EpochProgress(self.run_name, plan.label, epoch, self.config.optim.epochs,
                                plan.steps_per_epoch * plan.world_size * self.config.data.batch_size)
        metrics = train_epoch(ddp_model, batches, self.optimizer, self.scheduler, self.scaler,
                              num_classes=len(self.plan.classes), device=self.device, dtype=self.dtype,
                              label_smoothing=self.config.optim.label_smoothing, memory_format=self.memory_format,
                              progress=self.progress(bar, epoch) if bar else None)
        if bar:
            bar.close()
        return metrics

    def progress(self, bar: EpochProgress, epoch: int):
        """Rank 0's clips done of the epoch and the running loss, for the driver's progress bar."""
        world = self.plan.world_size

        def show(clips_done: int, loss: float) -> None:
            if self.first_batch_time is None:
                self.first_batch_time = time.time()  # wall clock: comparable with the driver's
            bar.update(clips_done * world, loss)
            if clips_done == self.config.data.batch_size:
                pause_point(self.run_name, f"epoch{epoch}.train")


        return show

    def validate(self, held, epoch: int) -> dict[str, float]:
        """Top-k on the centre clip of every validation video, summed over the workers."""
        if self.rank == 0:
            pause_point(self.run_name, f"epoch{epoch}.val")
        batches = self.inputs.validation_batches(held)
        meter = validate(self.model, batches, num_classes=len(self.plan.classes), device=self.device,
                         dtype=self.dtype, memory_format=self.memory_format)
        return meter.all_reduce().compute(VAL)

    def data_health(self, epoch: int) -> dict[str, float]:
        """Clips and videos served (how many by PyAV) and videos skipped in ``epoch``, once every
        worker has counted its share (rank 0 asks the tally; the others report nothing)."""
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        if self.rank != 0:
            return {}
        health = self.plan.inputs.train_health.summary(epoch)
        for line in skipped_lines(health, epoch):
            log.warning("%s", line)
        counts = ("clips_served", "videos_served", "videos_served_twice", "videos_skipped", "served_by_pyav")
        return {**{key: float(health[key]) for key in counts},
                **{f"videos_skipped_{reason}": float(n) for reason, n in health["skipped_by_reason"].items()}}

    def report(self, metrics: dict[str, float], epoch: int) -> None:
        """Report the epoch with rank 0's checkpoint, then wait until Ray has registered it."""
        import ray.train
        from ray.train import CheckpointConsistencyMode

        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if self.rank == 0:
                save_checkpoint(folder, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                scaler=self.scaler, epoch=epoch, classes=self.plan.classes,
                                config=self.config.to_dict())
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)
        ray.train.get_all_reported_checkpoints(consistency_mode=CheckpointConsistencyMode.COMMITTED)

    def run(self) -> None:
        import ray
        import ray.train
        import ray.train.torch

        if self.rank == 0:
            pause_point(self.run_name, "attempt")  # once per start of the worker group
        self.restore()
        ddp_model = ray.train.torch.prepare_model(self.model, move_to_device=False)
        if self.config.model.compile:
            ddp_model = torch.compile(ddp_model)
        held, epochs = self.inputs.open(self.start_epoch, self.config.optim.epochs)
        for epoch, batches in zip(range(self.start_epoch, self.config.optim.epochs), epochs):
            metrics = self.train(ddp_model, batches, epoch)
            metrics.update(self.validate(held, epoch))
            metrics.update(self.data_health(epoch))
            metrics["epoch"] = epoch
            metrics["node_id"] = ray.get_runtime_context().get_node_id()  # where each rank trained
            if epoch == self.start_epoch and self.first_batch_time is not None:
                metrics["first_batch_time"] = self.first_batch_time
            self.report(metrics, epoch)
            pause_point(self.run_name, f"epoch{epoch}", mark=self.rank == 0, every_epoch=True)


def skipped_lines(health: dict, epoch: int, named: int = 5) -> list[str]:
    """The console's account of an epoch's skipped videos: a count per reason, naming the first
    ``named`` files in all (the whole list is the run's ``data/skipped.csv``)."""
    lines, left = [], named
    for reason, count in health["skipped_by_reason"].items():
        paths = [o["path"] for o in health["offenders"] if o["reason"] == reason][:max(left, 0)]
        left -= len(paths)
        more = f" (+{count - len(paths)} more in data/skipped.csv)" if count > len(paths) else ""
        lines.append(f"epoch {epoch + 1}: skipped {count} video(s): {reason}"
                     + (f": {', '.join(paths)}" if paths else "") + more)
    return lines


def train_loop_per_worker(config: dict) -> None:
    """The function Ray Train runs on every worker (``config["plan"]`` is a :class:`WorkerPlan`)."""
    console_logging()
    try:
        TrainLoop(config["plan"]).run()
    except Exception as error:
        stop = data_stop_in(error)
        if stop is None:
            raise
        raise stop from None  # its own type, so the failure policy does not retry it (see driver.make_trainer)
