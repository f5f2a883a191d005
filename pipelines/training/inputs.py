"""A training worker's inputs for the whole run: one stream of training batches, validation decoded once.

The driver decides (``InputPlan``) whether clips come from the decoded-clip cache or from a
decode stream; either way the worker opens its source once per run, so decoders start once,
not once per epoch (Ray Data starts a new execution, actor pool included, for every pass
over a dataset). Validation clips do not depend on the epoch: they are decoded once, kept
as uint8, and reused every epoch.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import torch

from ..data.annotations import VideoList
from ..data.batches import ClipBatch, to_batch
from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.epochs import Sample, epoch_batches
from ..data.health import RemoteTally
from ..data.sampling import ClipSpec
from ..data.sources import CachedClips, StreamedClips


@dataclass(frozen=True)
class InputPlan:
    """Where every worker's clips come from (it crosses process boundaries: plain fields and handles)."""

    train: VideoList
    val: VideoList
    train_health: RemoteTally
    val_health: RemoteTally
    pool: DecodePool | None = None  # each worker's decode pool when streaming
    train_cache: VideoCache | None = None  # set when the clips are cached
    val_cache: VideoCache | None = None

    def source(self, split: str, spec: ClipSpec):
        videos, cache, health = ((self.train, self.train_cache, self.train_health) if split == "train"
                                 else (self.val, self.val_cache, self.val_health))
        if cache is not None:
            return CachedClips(videos, cache, spec, health)
        return StreamedClips(videos, spec, self.pool, health)


class WorkerInputs:
    """Worker ``rank`` of ``world``: its training batches for epochs ``start..epochs-1`` and its validation set."""

    def __init__(self, plan: InputPlan, spec: ClipSpec, *, rank: int, world: int, batch_size: int,
                 steps_per_epoch: int, device: torch.device) -> None:
        self.plan, self.spec, self.rank, self.world = plan, spec, rank, world
        self.batch_size, self.steps, self.device = batch_size, steps_per_epoch, device

    def training(self, start_epoch: int, epochs: int) -> Iterator[Iterator[ClipBatch]]:
        """One iterator of batches per epoch, all drawn from one source opened once."""
        wanted = range(start_epoch, epochs)
        samples = self.plan.source("train", self.spec).samples("train", list(wanted), self.rank, self.world, True)
        batches = epoch_batches(samples, wanted, self.steps, self.batch_size)
        for _ in wanted:
            yield (to_batch(batch, self.device) for _, batch in itertools.islice(batches, self.steps))

    def validation(self) -> list[list[Sample]]:
        """This worker's validation clips (the centre clip of every ``world``-th video), decoded once."""
        samples = list(self.plan.source("val", self.spec).samples("eval", [0], self.rank, self.world, False))
        return [samples[i:i + self.batch_size] for i in range(0, len(samples), self.batch_size)]

    def validation_batches(self, held: list[list[Sample]]) -> Iterator[ClipBatch]:
        return (to_batch(batch, self.device) for batch in held)
