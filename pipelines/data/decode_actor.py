"""The decode actors' ``map_batches`` UDF: video rows in, uint8 clips out, every video counted.

A bad file must cost one video, never an epoch: the UDF skips a video that raises
:class:`~pipelines.data.decoding.BadVideo` and reports it to a
:class:`~pipelines.data.health.DataHealth` tally, and only when the tally says more than the
allowed fraction of the dataset is unreadable does it raise
:class:`~pipelines.data.health.TooManyBadVideos`, which stops the run with the first offenders listed.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

import numpy as np

from .decoding import BadVideo, decode_video
from .epochs import HELD_EPOCH
from .health import TooManyBadVideos
from .sampling import MODES, ClipSpec

log = logging.getLogger(__name__)


class DecodeClips:
    """The ``map_batches`` UDF: rows ``(path, key, label, video[, epoch])`` in, one row per view out
    (``key``, the video's name within its dataset, seeds its training clips; ``path`` stands in
    when a row has none).

    Output columns: ``clip`` uint8 ``(N, T, h, w, 3)``, ``label`` int64, ``video`` int64 (row
    index in the annotation list, for averaging test views), ``view`` int64, ``epoch`` int64.

    A row's ``epoch`` column, when there is one, says which epoch it belongs to (the training
    stream of a whole run). Otherwise ``epoch`` fixes it, or ``epoch=None`` asks ``health``
    which epoch each video's visit belongs to, so every pass over the dataset re-samples clips
    while a given (epoch, video) always yields the same clip. ``health`` is a ``RemoteTally``
    (or a local ``DataHealth``); skipped files and served clips are reported to
    it, and so is each start of this class (decode actors are meant to start once per run).
    ``rows``, when given, turns each incoming batch into those rows first (a training stream's
    row numbers into videos: index arithmetic, done here rather than in tasks of its own). Rows
    it marks ``held`` (a worker's validation videos, ahead of its training stream) are decoded
    as ``eval`` clips, reported to ``held_health`` and come out with epoch :data:`HELD_EPOCH`.
    """

    def __init__(self, spec: ClipSpec, mode: str, health: Any, epoch: int | None = None,
                 num_threads: int = 1, rows: Callable[[dict], dict] | None = None, held_health: Any = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {MODES}")
        self.spec, self.mode, self.epoch, self.num_threads, self.rows = spec, mode, epoch, num_threads, rows
        self.health, self.held_health = health, held_health
        if health is not None:  # None: nobody counts (a one-off decode)
            health.started()

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        if self.rows is not None:
            batch = self.rows(batch)
        held = batch.pop("held", None)
        if held is not None and held.any():
            yield from self._decode({k: v[held] for k, v in batch.items()}, "eval", self.held_health, HELD_EPOCH)
            batch = {k: v[~held] for k, v in batch.items()}
        if len(batch["video"]):
            yield from self._decode(batch, self.mode, self.health)

    def _decode(self, batch: dict[str, np.ndarray], mode: str, health: Any,
                marked_epoch: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        videos = [int(v) for v in batch["video"]]
        if marked_epoch is not None:
            epochs = [0] * len(videos)  # a held video's clips do not depend on the epoch
        elif "epoch" in batch:
            epochs = [int(e) for e in batch["epoch"]]
        elif self.epoch is None:
            epochs = self.health.claim(videos)
        else:
            epochs = [self.epoch] * len(videos)
        outputs, served, skipped = [], [], []
        keys = batch.get("key", batch["path"])
        for path, key, label, video, epoch in zip(batch["path"], keys, batch["label"], videos, epochs):
            path = str(path)
            try:
                decoded = decode_video(path, int(label), self.spec, mode, epoch, self.num_threads, str(key))
            except BadVideo as bad:
                log.warning("skipping %s", bad)
                skipped.append((epoch, video, path, bad.reason, bad.detail))
                continue
            served.append((epoch, video, len(decoded.views), decoded.decoder))
            outputs.append((video, epoch if marked_epoch is None else marked_epoch, decoded.views))
        # A RemoteTally raises TooManyBadVideos itself; a local DataHealth returns the message.
        stop = health.record(served, skipped) if health is not None else None
        if stop:
            raise TooManyBadVideos(stop)
        # An all-bad batch yields nothing (an empty block would not be a tensor column). Test
        # mode yields each video's K x 3 views on their own, so a batch never makes a huge block.
        groups = [[o] for o in outputs] if mode == "test" else [outputs] if outputs else []
        for group in groups:
            yield _columns(group)


def _columns(outputs: list[tuple[int, int, list[tuple[np.ndarray, int]]]]) -> dict[str, np.ndarray]:
    rows = [(video, number, clip, label, epoch) for video, epoch, views in outputs
            for number, (clip, label) in enumerate(views)]
    return {
        "clip": np.stack([r[2] for r in rows]),
        "label": np.asarray([r[3] for r in rows], np.int64),
        "video": np.asarray([r[0] for r in rows], np.int64),
        "view": np.asarray([r[1] for r in rows], np.int64),
        "epoch": np.asarray([r[4] for r in rows], np.int64),
    }
