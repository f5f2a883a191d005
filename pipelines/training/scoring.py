"""The multi-view test scored where training ran: on workers sized like the run's training workers.

Each of ``TestWorkers.count`` Ray tasks (one training worker's CPUs and GPUs) loads the checkpoint
and scores every test view of its shard of the list (every ``count``-th video), reading clips
from the same sources training read: the decoded-clip cache when the run has one, else its
share of the decode pool. The driver only gathers the per-view scores and averages them per
video; it never runs the model, so on a GPU cluster the test runs on the GPUs, and on Kinetics
it is split ``count`` ways instead of running on one CPU process.

Why tasks, not a second ``TorchTrainer``: scoring needs no process group (nothing is
synchronised), a task's return value carries its scores back (a Ray Train worker can only hand
back arrays through a checkpoint in storage), and Ray retries a task whose node was lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import torch

from ..data.annotations import VideoList
from ..data.batches import ClipBatch, to_batch
from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.sampling import ClipSpec
from ..data.sources import CachedClips, StreamedClips


@dataclass(frozen=True)
class TestWorkers:
    """How many scoring tasks and the resources of each: a training worker's, so the test fits
    wherever training did."""

    count: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    label_selector: Mapping[str, str] | None = None  # the nodes training ran on, when a cluster labels them
    resources: Mapping[str, float] | None = None  # custom resources a training worker asks for (cluster.*)
    threads: int = 1  # torch CPU threads: fixed, so the scores are the same however the run was placed

    def __post_init__(self) -> None:
        if self.count < 1 or self.cpus <= 0 or self.gpus < 0 or self.threads < 1:
            raise ValueError(f"invalid test workers {self}")


@dataclass(frozen=True)
class ViewScores:
    """Every scored view of a list: softmax scores (views, classes), labels and video positions."""

    scores: np.ndarray
    labels: np.ndarray
    videos: np.ndarray

    @classmethod
    def concatenate(cls, parts: list["ViewScores"]) -> "ViewScores":
        parts = [p for p in parts if len(p.videos)]
        if not parts:
            return cls(np.zeros((0, 0)), np.zeros(0, np.int64), np.zeros(0, np.int64))
        return cls(*(np.concatenate(arrays) for arrays in zip(*((p.scores, p.labels, p.videos) for p in parts))))


def score_batches(model: torch.nn.Module, batches: Iterable[ClipBatch],
                  device: torch.device = torch.device("cpu")) -> ViewScores:
    """The softmax scores of every clip of ``batches`` (the forward pass of validation)."""
    from .step import predict_batches

    outputs = predict_batches(model.to(device), batches, device=device)
    return ViewScores.concatenate([ViewScores(s.numpy(), y.numpy(), v.numpy()) for s, y, v in outputs])


def both_ways(batches: Iterable[ClipBatch], offset: int) -> Iterator[ClipBatch]:
    """Each batch, then the same clips reversed along T (clips are (N, 3, T, H, W)), their
    video ids moved up by ``offset`` so that views are averaged per video and direction."""
    for batch in batches:
        yield batch
        yield batch._replace(clips=batch.clips.flip(2), videos=batch.videos + offset)


def score_views(model: torch.nn.Module, videos: VideoList, spec: ClipSpec, *, rank: int, world: int,
                batch_size: int, pool: DecodePool, cache: VideoCache | None,
                device: torch.device = torch.device("cpu"), reversed_too: bool = False) -> ViewScores:
    """The scores of every test view of shard ``rank`` of ``world`` (videos ``rank::world``); with
    ``reversed_too`` each view reversed in time as well (see :func:`both_ways`)."""
    if cache is not None:
        samples = CachedClips(videos, cache, spec).samples("test", [0], rank, world, shuffle=False)
    else:
        samples = StreamedClips(videos, spec, pool.per_worker(world)).samples("test", [0], rank, world, False)
    batches = (to_batch(chunk, device) for chunk in _chunks(samples, batch_size))
    return score_batches(model, both_ways(batches, len(videos)) if reversed_too else batches, device)


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _score_shard(checkpoint: str, videos: VideoList, spec: ClipSpec, rank: int, world: int, batch_size: int,
                 pool: DecodePool, cache: VideoCache | None, threads: int, reversed_too: bool) -> ViewScores:
    """One scoring task: the checkpoint's model on this worker's device, its shard's views scored."""
    from .checkpoints import load_trained

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, _, _ = load_trained(checkpoint)
    return score_views(model, videos, spec, rank=rank, world=world, batch_size=batch_size, pool=pool,
                       cache=cache, device=device, reversed_too=reversed_too)


def score_on_workers(checkpoint: str | Path, videos: VideoList, spec: ClipSpec, workers: TestWorkers, *,
                     batch_size: int, pool: DecodePool, cache: VideoCache | None,
                     reversed_too: bool = False) -> ViewScores:
    """Every test view of ``videos`` scored by ``workers.count`` tasks, one shard each, gathered here."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Outside any placement group: a sweep's trial holds one with no CPU (its trainer makes its
    # own), and its child tasks would otherwise be placed in it, where they can never fit.
    sized = {"num_cpus": workers.cpus, "num_gpus": workers.gpus,
             "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=None)}
    if workers.label_selector:
        sized["label_selector"] = dict(workers.label_selector)
    if workers.resources:
        sized["resources"] = dict(workers.resources)
    task = ray.remote(**sized)(_score_shard)
    listed = ray.put(videos)  # once, not once per task: a Kinetics list is tens of MB
    shards = [task.remote(str(checkpoint), listed, spec, rank, workers.count, batch_size, pool, cache,
                          workers.threads, reversed_too) for rank in range(workers.count)]
    return ViewScores.concatenate(ray.get(shards))
