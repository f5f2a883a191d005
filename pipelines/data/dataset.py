"""The Ray Data side: (path, label) rows -> a pool of decode actors -> uint8 clips.

Each pass over the dataset is one epoch (the multi-view test and ``run.py bench data`` read
it this way; training runs read one stream per run instead, ``sources.StreamedClips``)::

    videos = read_dataset_folder(root, "test")
    clips = build_dataset(videos, spec, "test", pool=fit_decode_pool(train_workers=0, cpus_per_worker=1.0))
    for batch in iter_clip_batches(clips.dataset, batch_size=8):  # pipelines.data.batches
        scores = model(batch.clips).softmax(1)

Decoding runs on a pool of CPU actors (``compute=ActorPoolStrategy``), one decord thread
each; frames stay uint8 until the training worker. The pool must fit next to the training
workers or Ray Data never starts it, so its size comes from ``pipelines.cluster.fit_decode_pool``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import UsageError
from .annotations import VideoList, VideoRecord
from .decode_actor import DecodeClips
from .health import RemoteTally, remote_tally
from .sampling import MODES, ClipSpec


@dataclass(frozen=True)
class DecodePool:
    """Decode actors: CPUs each, pool bounds, videos per ``map_batches`` call, nodes they may use."""

    num_cpus: float = 1.0
    min_actors: int = 1
    max_actors: int = 2
    batch_size: int = 8  # videos per UDF call: fewer calls for small clips, blocks still < 20 MB at 224 px
    label_selector: Mapping[str, str] | None = None  # Ray node labels the actors need; None: any node

    def __post_init__(self) -> None:
        if self.num_cpus <= 0 or self.min_actors < 1 or self.max_actors < self.min_actors or self.batch_size < 1:
            raise ValueError(f"invalid decode pool {self}")

    def per_worker(self, workers: int) -> "DecodePool":
        """One training worker's share of the pool, at a fixed size (its actors start once per run):
        whole actors when there are enough to go round, else one smaller actor each."""
        if self.max_actors >= workers:
            count = self.max_actors // workers
            return dataclasses.replace(self, min_actors=count, max_actors=count)
        return dataclasses.replace(self, num_cpus=round(self.num_cpus * self.max_actors / workers, 3),
                                   min_actors=1, max_actors=1)

    def blocks(self, rows: int) -> int:
        """Blocks for ``rows`` rows: one per ``map_batches`` call, so no actor call waits on two blocks."""
        return max(1, math.ceil(rows / self.batch_size))

    def decode(self, dataset, **decoder):
        """The Ray Dataset ``dataset`` decoded into clips by this pool's actors (``decoder``: the
        keyword arguments of :class:`~pipelines.data.decode_actor.DecodeClips`)."""
        import ray

        return dataset.map_batches(
            DecodeClips, fn_constructor_kwargs=decoder, batch_size=self.batch_size, batch_format="numpy",
            num_cpus=self.num_cpus, label_selector=dict(self.label_selector) if self.label_selector else None,
            compute=ray.data.ActorPoolStrategy(min_size=self.min_actors, max_size=self.max_actors))


@dataclass
class ClipDataset:
    """A Ray Dataset of clips plus the health tally its decode actors report to."""

    dataset: Any  # ray.data.Dataset
    health: RemoteTally
    videos: VideoList
    spec: ClipSpec
    mode: str


def video_rows(videos: VideoList | Sequence[VideoRecord]) -> list[dict]:
    """The dataset's rows: ``path``, ``key`` (the video's name within its dataset), ``label`` and
    ``video`` (position in the list)."""
    records = videos.records if isinstance(videos, VideoList) else videos
    return [{"path": r.path, "key": r.key, "label": int(r.label), "video": i} for i, r in enumerate(records)]


def build_dataset(videos: VideoList, spec: ClipSpec, mode: str, *, pool: DecodePool = DecodePool(),
                  epoch: int | None = None, start_epoch: int = 0, max_bad_fraction: float = 0.05,
                  shuffle: bool | None = None, health: RemoteTally | None = None) -> ClipDataset:
    """A Ray Dataset yielding clips of ``videos`` in ``mode`` (train, eval or test).

    - ``epoch=None``: every pass over the dataset is the next epoch (from ``start_epoch``);
      clips re-sample each pass and a given (epoch, video) always yields the same clip. An
      int fixes the epoch. Eval and test clips do not depend on the epoch. (Training runs
      use ``sources.StreamedClips`` instead: one pass for the whole run, split by worker.)
    - ``shuffle`` (default: only in training) permutes the videos once and the order of
      blocks of ``pool.batch_size`` videos on every pass; mix further with
      ``local_shuffle_buffer_size`` in ``pipelines.data.batches.iter_clip_batches``.
    - More than ``max_bad_fraction`` of the videos unreadable in one epoch stops the run
      with :class:`~pipelines.data.health.TooManyBadVideos`; fewer are skipped and counted.
    """
    import ray

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {MODES}")
    if len(videos) == 0:
        raise UsageError(f"{videos.source or 'dataset'}: no videos")
    if health is None:
        health = remote_tally(len(videos), max_bad_fraction, start_epoch, name=videos.source or mode)
    rows = video_rows(videos)
    shuffle = mode == "train" if shuffle is None else shuffle
    if shuffle:  # classes mixed within blocks; block order then changes every pass
        rows = [rows[i] for i in np.random.default_rng(spec.seed).permutation(len(rows))]
    dataset = ray.data.from_items(rows, override_num_blocks=pool.blocks(len(rows)))
    if shuffle:
        # Not random_shuffle(): its CPU tasks starve once the train workers and the decode
        # pool hold every CPU (the run hangs); a block permutation needs no tasks.
        dataset = dataset.randomize_block_order()
    return ClipDataset(pool.decode(dataset, spec=spec, mode=mode, health=health, epoch=epoch), health, videos,
                       spec, mode)
