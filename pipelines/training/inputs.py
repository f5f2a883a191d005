"""A training worker's inputs for the whole run: one stream of training batches, validation decoded once.

The driver decides (``InputPlan``) whether clips come from the decoded-clip cache or from a
decode stream; either way the worker opens its source once per run, so decoders start once,
not once per epoch (Ray Data starts a new execution, actor pool included, for every pass
over a dataset). Validation clips do not depend on the epoch: they are decoded once, kept
as uint8, and reused every epoch; when streaming, they lead the training stream, so the
same decode actors serve both.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from ..data.annotations import VideoList
from ..data.batches import ClipBatch, to_batch
from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.epochs import HELD_EPOCH, Sample, epoch_batches
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


class WorkerInputs:
    """Worker ``rank`` of ``world``: its validation set and its training batches for epochs ``start..epochs-1``."""

    def __init__(self, plan: InputPlan, spec: ClipSpec, *, rank: int, world: int, batch_size: int,
                 steps_per_epoch: int, device: torch.device) -> None:
        self.plan, self.spec, self.rank, self.world = plan, spec, rank, world
        self.batch_size, self.steps, self.device = batch_size, steps_per_epoch, device

    def open(self, start_epoch: int, epochs: int) -> tuple[list[list[Sample]], Iterator[Iterator[ClipBatch]]]:
        """This worker's validation clips, decoded once, and one iterator of training batches per
        epoch: from the cache, or from one decode stream whose first clips are the validation ones."""
        wanted = list(range(start_epoch, epochs))
        plan = self.plan
        if plan.train_cache is not None:
            held = CachedClips(plan.val, plan.val_cache, self.spec, plan.val_health).samples(
                "eval", [0], self.rank, self.world, False)
            train = CachedClips(plan.train, plan.train_cache, self.spec, plan.train_health).samples(
                "train", wanted, self.rank, self.world, True)
            return self._held(held), self._epochs(train, wanted)
        stream = iter(StreamedClips(plan.train, self.spec, plan.pool, plan.train_health, held=plan.val,
                                    held_health=plan.val_health).samples("train", wanted, self.rank, self.world, True))
        held, first = [], None
        for sample in stream:
            if sample.epoch != HELD_EPOCH:
                first = sample
                break
            held.append(sample)
        train = itertools.chain([first] if first is not None else [], stream)
        return self._held(held), self._epochs(train, wanted)

    def _held(self, samples: Iterable[Sample]) -> list[list[Sample]]:
        samples = list(samples)
        return [samples[i:i + self.batch_size] for i in range(0, len(samples), self.batch_size)]

    def _epochs(self, samples: Iterable[Sample], wanted: list[int]) -> Iterator[Iterator[ClipBatch]]:
        batches = epoch_batches(samples, wanted, self.steps, self.batch_size)
        for _ in wanted:
            yield (to_batch(batch, self.device) for _, batch in itertools.islice(batches, self.steps))

    def validation_batches(self, held: list[list[Sample]]) -> Iterator[ClipBatch]:
        return (to_batch(batch, self.device) for batch in held)
