"""Decoded videos kept in Ray's object store, so a run (or a whole sweep) decodes each video once.

Each video is decoded whole, uint8 at its own size, by a Ray task launched from the driver,
which therefore owns the result: the frames live as long as the run (or the sweep) that asked
for them, and every training worker on the node reads them without a copy. The driver does
not wait for the decoding: it overlaps the training workers' start-up. Clips are then
cut from the cached frames each epoch (``decoding.views_from_frames``): the same frames, the
same (seed, epoch, video) generator and the same crop code as the streaming path, so both
paths give identical clips. A bad file is found once, here, and reported in every epoch
that would have served it.

``data.cache``: ``memory`` always caches; ``auto`` caches when the decoded set, estimated
from the container headers, fills at most half of the object store; ``none`` streams.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from .annotations import VideoList
from .decoding import BadVideo, open_video, read_frames_saying_decoder
from .video_io import probe_frames

log = logging.getLogger(__name__)

CACHE_MODES = ("auto", "memory", "none")


@dataclass
class VideoCache:
    """The frames of every video of one list, by position, as Ray object refs (being decoded, or done).

    Nothing here waits: a training worker that asks for frames not decoded yet waits for them,
    so decoding overlaps the start-up of the training workers.
    """

    source: str
    refs: list[Any]  # ray.ObjectRef of uint8 (T, H, W, 3), or of None for a bad video
    meta: list[Any]  # ray.ObjectRef of {"reason", "detail", "decoder", "nbytes"} per video
    _meta: list[dict] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.refs)

    def frames(self, videos: Sequence[int]) -> list[np.ndarray | None]:
        """The frames of ``videos`` (None for bad ones), read from the object store without a copy."""
        import ray

        return ray.get([self.refs[v] for v in videos]) if len(videos) else []

    def decoders(self, videos: Sequence[int]) -> list[str | None]:
        """Which decoder gave each of ``videos`` its frames (``"decord"``, ``"pyav"``; None: bad)."""
        import ray

        if self._meta is not None:
            return [self._meta[v]["decoder"] for v in videos]
        return [m["decoder"] for m in ray.get([self.meta[v] for v in videos])] if len(videos) else []

    def _metadata(self) -> list[dict]:
        import ray

        if self._meta is None:
            self._meta = ray.get(self.meta)
        return self._meta

    @property
    def bad(self) -> dict[int, tuple[str, str]]:
        """video -> (reason, detail) for every video that could not be decoded (waits for all)."""
        return {i: (m["reason"], m["detail"]) for i, m in enumerate(self._metadata()) if m["reason"] is not None}

    @property
    def nbytes(self) -> int:
        return sum(m["nbytes"] for m in self._metadata())


def decode_whole(path: str, min_side: int, max_aspect: float) -> tuple[dict, np.ndarray | None]:
    """Every frame of one video and the decoder that gave them, or why there are none
    (``{"reason", "detail", "decoder", "nbytes"}``). A Ray task here; ``bench train``'s plain
    PyTorch script fills its in-memory set with it too, so both decode alike."""
    try:
        reader = open_video(path)
        frames, why = read_frames_saying_decoder(reader, np.arange(len(reader)), path, min_side, max_aspect)
    except BadVideo as bad:
        return {"reason": bad.reason, "detail": bad.detail, "decoder": None, "nbytes": 0}, None
    if why:
        log.info("%s: served by PyAV (%s)", path, why)
    return {"reason": None, "detail": why, "decoder": "pyav" if why else "decord", "nbytes": int(frames.nbytes)}, frames


def estimate_bytes(videos: VideoList, sample: int = 16) -> int:
    """Decoded size of the list, from the headers of an evenly spaced sample of its videos."""
    if len(videos) == 0:
        return 0
    picks = np.linspace(0, len(videos) - 1, min(sample, len(videos))).round().astype(int)
    sizes = [probe_frames(videos.records[i].path) for i in sorted(set(picks.tolist()))]
    known = [t * h * w * 3 for t, h, w in (s for s in sizes if s is not None)]
    return int(np.mean(known) * len(videos)) if known else 0


def should_cache(mode: str, videos: list[VideoList]) -> tuple[bool, str]:
    """Whether to cache these lists, and the sentence that says why (for the log)."""
    import ray

    if mode not in CACHE_MODES:
        raise UsageError(f"data.cache {mode!r}: expected one of {CACHE_MODES}")
    if mode == "none":
        return False, "data.cache none: decoding every epoch"
    size = sum(estimate_bytes(v) for v in videos)
    store = float(ray.available_resources().get("object_store_memory", 0))
    fits = size <= 0.5 * store
    where = f"decoded set ~{size / 2**20:.0f} MiB, object store {store / 2**20:.0f} MiB free"
    if mode == "memory":
        return True, f"data.cache memory: decoding each video once ({where})"
    return fits, f"data.cache auto: {'caching' if fits else 'streaming'} ({where})"


def cache_videos(videos: VideoList, *, num_cpus: float = 1.0, min_side: int = 16, max_aspect: float = 4.0,
                 label_selector: dict | None = None) -> VideoCache:
    """Start decoding every video of ``videos`` once, on Ray tasks of ``num_cpus`` each (on the nodes
    ``label_selector`` names, the decode nodes of a cluster); returns at once. This process owns
    the frames: they live as long as it holds the cache."""
    import ray

    options = {"num_cpus": num_cpus, "num_returns": 2}
    if label_selector:
        options["label_selector"] = dict(label_selector)
    decode = ray.remote(**options)(decode_whole)
    pending = [decode.remote(r.path, min_side, max_aspect) for r in videos.records]
    log.info("caching %d videos of %s in the background", len(videos), videos.source or "a list")
    return VideoCache(videos.source, [frames for _, frames in pending], [meta for meta, _ in pending])
