"""Where a training worker's clips come from, for the whole run: a decode stream or the cache.

Both give the worker its share of every epoch it asks for (``epochs.worker_share``) as
:class:`~pipelines.data.epochs.Sample` s, in order, and report what they served and skipped
to the dataset's health tally before the samples reach the worker:

- :class:`StreamedClips`: one Ray Data execution per worker per *run* (not per epoch), whose
  rows are (epoch, video) for every epoch asked, decoded on a pool of actors that start
  once and keep the rows' order (``preserve_order``), so the worker sees the same clips in
  the same order on every run with the same seed.
- :class:`CachedClips`: the frames come from a :class:`~pipelines.data.cache.VideoCache`,
  the clips are cut in a background thread of the worker (the cheap step), and nothing else
  competes with training for the CPUs.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, Sequence

import numpy as np

from .annotations import VideoList
from .cache import VideoCache
from .dataset import DecodePool
from .decoding import BadVideo, views_from_frames
from .epochs import HELD_EPOCH, Sample, share_size, worker_share
from .health import RemoteTally
from .sampling import ClipSpec


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` ahead (clip cutting overlaps training)."""
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()

    def fill() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as error:  # re-raised in the consumer
            buffer.put(error)
        buffer.put(done)

    threading.Thread(target=fill, daemon=True, name="prefetch").start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


class CachedClips:
    """A worker's clips cut from cached frames."""

    def __init__(self, videos: VideoList, cache: VideoCache, spec: ClipSpec, health: RemoteTally | None = None,
                 chunk: int = 16) -> None:
        self.videos, self.cache, self.spec, self.health, self.chunk = videos, cache, spec, health, chunk

    def samples(self, mode: str, epochs: Sequence[int], rank: int, world: int, shuffle: bool,
                depth: int = 64) -> Iterator[Sample]:
        return prefetch(self._samples(mode, epochs, rank, world, shuffle), depth)

    def _samples(self, mode, epochs, rank, world, shuffle) -> Iterator[Sample]:
        for epoch in epochs:
            share = worker_share(len(self.videos), epoch, self.spec.seed, rank, world, shuffle).tolist()
            for start in range(0, len(share), self.chunk):
                yield from self._chunk(mode, epoch, share[start:start + self.chunk])

    def _chunk(self, mode: str, epoch: int, videos: list[int]) -> list[Sample]:
        out, served, skipped = [], [], []
        for video, frames, decoder in zip(videos, self.cache.frames(videos), self.cache.decoders(videos)):
            record = self.videos.records[video]
            try:
                if frames is None:  # found bad when it was cached
                    raise BadVideo(record.path, *self.cache.bad[video])
                views = views_from_frames(frames, record.path, record.label, self.spec, mode, epoch, record.key)
            except BadVideo as bad:
                skipped.append((epoch, video, record.path, bad.reason, bad.detail))
                continue
            served.append((epoch, video, len(views), decoder))  # found once, counted every epoch
            out.extend(Sample(epoch, video, clip, label) for clip, label in views)
        if self.health is not None:
            self.health.record(served, skipped)  # before the clips are seen: an epoch's count is whole
        return out


class ShareRows:
    """``map_batches`` UDF: row numbers -> (path, key, label, video, epoch, held) of a worker's stream.

    The first rows are the worker's ``held`` validation videos (every ``world``-th of that list,
    in its order), marked ``held``; then its share of the training videos, epoch after epoch.
    The lists travel as columns (:class:`~pipelines.data.columns.VideoColumns`): this object
    goes to every decode actor of the stream.
    """

    def __init__(self, videos: VideoList, epochs: list[int], seed: int, rank: int, world: int, shuffle: bool,
                 held: VideoList | None = None) -> None:
        self.videos, self.epochs = videos.columns(), epochs
        self.seed, self.rank, self.world, self.shuffle = seed, rank, world, shuffle
        self.per_epoch = share_size(len(videos), rank, world)
        self.held = held.columns() if held is not None else None
        self.held_videos = worker_share(len(held), 0, seed, rank, world, False) if held is not None else np.empty(0, int)
        self._shares: dict[int, np.ndarray] = {}

    def share(self, epoch: int) -> np.ndarray:
        """The videos of this worker's ``epoch``, in order: computed once per epoch, not once per
        batch (a permutation of the whole list: on Kinetics, 240,000 numbers for 8 videos)."""
        if epoch not in self._shares:
            if len(self._shares) >= 2:  # batches arrive in order: an epoch two back is done
                self._shares.pop(min(self._shares))
            self._shares[epoch] = worker_share(len(self.videos), epoch, self.seed, self.rank, self.world,
                                               self.shuffle)
        return self._shares[epoch]

    def __len__(self) -> int:
        return len(self.held_videos) + self.per_epoch * len(self.epochs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = batch["data"].astype(np.int64)
        held = rows < len(self.held_videos)
        train = rows - len(self.held_videos)  # position in the training part
        epochs = np.full(len(rows), HELD_EPOCH, np.int64)
        epochs[~held] = np.asarray(self.epochs, np.int64)[train[~held] // self.per_epoch]
        videos = np.empty(len(rows), np.int64)
        videos[held] = self.held_videos[rows[held]]
        for epoch in np.unique(epochs[~held]):
            mine = ~held & (epochs == epoch)
            videos[mine] = self.share(int(epoch))[train[mine] % self.per_epoch]
        out = {"path": np.empty(len(rows), object), "key": np.empty(len(rows), object),
               "label": np.empty(len(rows), np.int64)}
        for columns, mine in ((self.videos, ~held), (self.held, held)):
            if mine.any():
                out["path"][mine], out["key"][mine] = columns.paths[videos[mine]], columns.keys[videos[mine]]
                out["label"][mine] = columns.labels[videos[mine]]
        return {**out, "video": videos, "epoch": epochs, "held": held}


class StreamedClips:
    """A worker's clips decoded by one Ray Data execution that covers every epoch asked for,
    led by its validation clips when ``held`` names the validation list: one actor pool per
    run decodes both (a second execution would start actors of its own, seconds each)."""

    def __init__(self, videos: VideoList, spec: ClipSpec, pool: DecodePool, health: RemoteTally | None = None,
                 held: VideoList | None = None, held_health: RemoteTally | None = None) -> None:
        self.videos, self.spec, self.pool, self.health = videos, spec, pool, health
        self.held, self.held_health = held, held_health

    def dataset(self, mode: str, epochs: Sequence[int], rank: int, world: int, shuffle: bool):
        from .row_numbers import row_numbers

        share = ShareRows(self.videos, list(epochs), self.spec.seed, rank, world, shuffle, held=self.held)
        # Row numbers made as the stream is read, a decode call's worth a block (whatever the
        # list's length, nothing is made up front); the decode actors turn them into videos.
        return self.pool.decode(row_numbers(len(share), self.pool.batch_size), spec=self.spec, mode=mode,
                                rows=share, health=self.health, held_health=self.held_health)

    def samples(self, mode: str, epochs: Sequence[int], rank: int, world: int, shuffle: bool,
                prefetch_batches: int = 4) -> Iterator[Sample]:
        """The stream's samples in order: held ones (epoch ``HELD_EPOCH``) first, then epoch by epoch;
        ``prefetch_batches`` decode calls' clips fetched ahead (a block holds one clip)."""
        dataset = self.dataset(mode, epochs, rank, world, shuffle)
        ahead = prefetch_batches * self.pool.batch_size
        for block in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=ahead):
            for clip, label, video, epoch in zip(block["clip"], block["label"], block["video"], block["epoch"]):
                yield Sample(int(epoch), int(video), clip, int(label))
