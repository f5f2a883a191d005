"""Which videos each training worker sees in each epoch, and how its clips become equal batches.

The rule is PyTorch's ``DistributedSampler`` with ``drop_last``, made a pure function of
(seed, epoch, rank): every epoch permutes all videos with a generator seeded by (seed,
epoch), worker ``rank`` of ``world`` takes every ``world``-th of them, and trains on exactly
``steps`` full batches. So the split is the same whichever process computes it, a resumed
run sees the same videos in the same order, and every DDP worker makes the same number of
steps (a worker that makes fewer would leave the others waiting in an all-reduce forever).

A worker's share is a little longer than its ``steps`` batches need (the rest of a batch is
dropped, as PySlowFast and MMAction2 do); when bad videos make it come up short, the epoch
is completed by repeating its first good clips, so the step count never changes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import UsageError


def steps_per_epoch(videos: int, batch_size: int, workers: int) -> int:
    """Full batches per worker per epoch; a set too small for one batch per worker is an error."""
    steps = (videos // workers) // batch_size
    if steps < 1:
        raise UsageError(f"{videos} training videos give {videos // workers} per worker, fewer than one "
                         f"batch of {batch_size}; lower data.batch_size or run.workers")
    return steps


def epoch_order(videos: int, epoch: int, seed: int) -> np.ndarray:
    """All video positions in the order epoch ``epoch`` visits them."""
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(videos)


def worker_share(videos: int, epoch: int, seed: int, rank: int, world: int, shuffle: bool = True) -> np.ndarray:
    """The videos worker ``rank`` of ``world`` visits in ``epoch``, in order: every world-th of
    the epoch's order (of the list's own order without ``shuffle``, as validation reads it)."""
    order = epoch_order(videos, epoch, seed) if shuffle else np.arange(videos)
    return order[rank::world]


def share_size(videos: int, rank: int, world: int) -> int:
    """How many videos worker ``rank`` visits per epoch (the same every epoch)."""
    return len(range(rank, videos, world))


# The epoch a worker's validation clips carry when they lead its training stream (``sources``).
HELD_EPOCH = -1


@dataclass(frozen=True)
class Sample:
    """One decoded training clip (uint8 ``(T, H, W, 3)``) and where it came from."""

    epoch: int
    video: int
    clip: Any
    label: int


class _Peekable:
    def __init__(self, items: Iterable[Sample]) -> None:
        self._items, self._head = iter(items), None

    def next_of(self, epoch: int) -> Sample | None:
        """The next sample if it belongs to ``epoch``; None (and it stays) otherwise."""
        if self._head is None:
            self._head = next(self._items, None)
        if self._head is None or self._head.epoch != epoch:
            return None
        head, self._head = self._head, None
        return head


def epoch_batches(samples: Iterable[Sample], epochs: Iterable[int], steps: int,
                  batch_size: int) -> Iterator[tuple[int, list[Sample]]]:
    """Group a stream of samples, ordered by epoch, into exactly ``steps`` batches per epoch.

    Yields ``(epoch, batch)`` as soon as each batch is full, so only one batch is held.
    Samples past an epoch's last full batch are dropped; an epoch short of clips (bad
    videos) repeats its first clips to fill up. An epoch with no readable clip at all is an
    error: there is nothing to train on.
    """
    stream = _Peekable(samples)
    for epoch in epochs:
        first: list[Sample] = []  # the epoch's first clips, kept to fill a short epoch
        batch: list[Sample] = []
        made = 0
        while made < steps and (sample := stream.next_of(epoch)) is not None:
            if len(first) < batch_size:
                first.append(sample)
            batch.append(sample)
            if len(batch) == batch_size:
                made += 1
                if made == steps:  # read to the epoch's end first: when its last batch is out, so is its count
                    while stream.next_of(epoch) is not None:
                        pass
                yield epoch, batch
                batch = []
        if made < steps and not first:
            raise RuntimeError(f"epoch {epoch}: no readable training clip on this worker")
        filler = itertools.cycle(first)
        while made < steps:
            batch.extend(next(filler) for _ in range(batch_size - len(batch)))
            made += 1
            yield epoch, batch
            batch = []
