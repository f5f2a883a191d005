"""One training epoch and one evaluation pass in plain PyTorch: no Ray, MLflow or decoder needed.

These are the pieces a GPU benchmark or a notebook can call on in-memory clips; the Ray
worker loop (``pipelines.training.worker``) only feeds them batches from its dataset shard.
The recipe follows the paper: SGD with momentum, a per-step cosine schedule after a linear
warmup, mixed precision on GPUs (bf16, or fp16 with a GradScaler).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Iterable

import torch
import torch.nn.functional as F

import smallbig

from ..config import ExperimentConfig, OptimSection
from ..data.batches import ClipBatch
from .metrics import LR, MEAN_CLASS_ACC, TRAIN, TRAIN_CLIPS_PER_S, TRAIN_STEP_S, ClassificationMeter

log = logging.getLogger(__name__)


def build_model_for(config: ExperimentConfig, num_classes: int, *, inflate: bool = True) -> torch.nn.Module:
    """The experiment's model, inflated from 2D weights when ``model.init_2d`` names a file (and ``inflate``)."""
    model = smallbig.build_model(config.model.name, num_classes=num_classes,
                                 num_frames=config.data.clip.frames, **config.model.options)
    if inflate and config.model.init_2d:
        state = torch.load(config.model.init_2d, map_location="cpu", weights_only=True)
        report = smallbig.load_2d_weights(model, state.get("state_dict", state))
        log.info("init from %s: %s", config.model.init_2d, report.summary())
    return model


def make_optimizer(model: torch.nn.Module, optim: OptimSection, global_batch: int) -> torch.optim.SGD:
    """The recipe's SGD, its lr scaled to ``global_batch`` clips per step: the one place momentum and
    weight decay are read, so the Ray worker, the benchmarks and a notebook train alike."""
    return torch.optim.SGD(model.parameters(), lr=optim.scaled_lr(global_batch), momentum=optim.momentum,
                           weight_decay=optim.weight_decay)


def cosine_with_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """Per-step schedule: linear warmup from ~0 to the base lr, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``auto`` is bf16 on a GPU that has it, else fp16 (with a GradScaler),
    and full precision on a CPU; ``bf16`` / ``fp16`` ask for it on any device (CPU autocast has both)."""
    if mode not in ("auto", "none", "bf16", "fp16"):  # the config refuses others: reaching here is a bug
        raise ValueError(f"amp mode {mode!r}")
    if mode == "none" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def train_epoch(model: torch.nn.Module, batches: Iterable[ClipBatch], optimizer: torch.optim.Optimizer,
                scheduler, scaler: torch.amp.GradScaler, *, num_classes: int, device: torch.device,
                dtype: torch.dtype | None, label_smoothing: float = 0.0,
                memory_format=torch.contiguous_format, progress=None) -> dict[str, float]:
    """One pass over ``batches``; returns train loss, top-1/top-5, clips/s, the last lr, and the
    seconds spent in the steps themselves (``train_step_s``: forward, backward and update,
    without the time spent waiting for the next batch).

    ``progress(step, loss)``, when given, is called after every step (a console display).
    """
    model.train()
    meter, clips, start, stepping = ClassificationMeter(num_classes), 0, time.perf_counter(), 0.0
    for batch in batches:
        step_start = time.perf_counter()
        x = batch.clips.contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), batch.labels, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        meter.update(logits, batch.labels, loss.item())  # .item() waits for the device: the step is done
        stepping += time.perf_counter() - step_start
        clips += len(batch.labels)
        if progress is not None:
            progress(clips, loss.item())
    elapsed = time.perf_counter() - start
    meter.all_reduce()
    metrics = meter.compute(TRAIN)
    metrics.pop(TRAIN + MEAN_CLASS_ACC)
    metrics[TRAIN_CLIPS_PER_S] = meter.count / max(elapsed, 1e-9)
    metrics[LR] = optimizer.param_groups[0]["lr"]
    metrics[TRAIN_STEP_S] = stepping
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


def validate(model: torch.nn.Module, batches: Iterable[ClipBatch], *, num_classes: int, device: torch.device,
             dtype: torch.dtype | None = None, memory_format=torch.contiguous_format) -> ClassificationMeter:
    """Top-k and confusion of one view per clip (the per-epoch validation on the centre clip)."""
    meter = ClassificationMeter(num_classes)
    for scores, labels, _ in predict_batches(model, batches, device=device, dtype=dtype, memory_format=memory_format):
        meter.update(scores, labels, F.nll_loss(scores.clamp_min(1e-12).log(), labels).item())
    return meter
