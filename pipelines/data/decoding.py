"""Decoding (decord, else PyAV) and bad-file triage: a video path in, its clips or a :class:`BadVideo` out.

decord reads the files it reads exactly (:data:`DECORD_EXACT_CODECS` in
:data:`DECORD_EXACT_CONTAINERS`); PyAV decodes the rest, and whatever decord fails to open or
decode, so a video is bad only when neither can give the clip (:class:`Decoded` says which did).
A bad file must cost one video, never an epoch: :func:`open_video` and :func:`read_frames` turn
every failure into a :class:`BadVideo` with a reason from :data:`REASONS`, and the decode
actors (``decode_actor.DecodeClips``) skip that video and count it.

Frames leave the decoders as uint8 ``(T, H, W, 3)``; conversion to float happens in the training
worker (:func:`pipelines.data.batches.to_model_input`), so the object store moves 4x less data.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from .crops import apply_crop
from .health import DataHealth, TooManyBadVideos
from .sampling import ClipSpec, TooShortError, clip_rng, plan_clips, plan_crops
from .video_io import (
    DECORD_EXACT_CODECS,
    DECORD_EXACT_CONTAINERS,
    PyAVReader,
    decord_misreads,
    frames_pyav_decodes,
    probe_size,
    read_frames_pyav,
)

log = logging.getLogger(__name__)

REASONS = {
    "missing": "file does not exist",
    "empty": "zero-byte file",
    "unreadable": "not a video, or cut off before its index (no readable container header)",
    "truncated": "the header reads, but frames fail to decode (cut off or corrupt data)",
    "too_short": "fewer frames than a clip needs",
    "bad_size": "frame size unusable (side below min_side, aspect beyond max_aspect, or inconsistent)",
}


class BadVideo(Exception):
    """A video that cannot give a clip; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f"{path}: {reason} ({detail or REASONS[reason]})")


@dataclass(frozen=True)
class Decoded:
    """One video's views and the decoder that gave them (``"pyav"`` with ``why`` when not decord)."""

    views: list[tuple[np.ndarray, int]]
    decoder: str = "decord"
    why: str = ""


def open_video(path: str, *, num_threads: int = 1, min_frames: int = 1):
    """Open ``path`` with decord where it reads exactly (one decode thread: parallelism comes from
    more actors), else with PyAV: a decord reader, or a :class:`PyAVReader`.

    A file is bad only when neither decoder can open it: :class:`BadVideo` for missing, empty,
    unreadable, truncated (no frame decodes) or too short files.
    """
    if not os.path.exists(path):
        raise BadVideo(path, "missing")
    if os.path.getsize(path) == 0:
        raise BadVideo(path, "empty")
    why = decord_misreads(path)
    reader = None
    if not why:
        reader, why = _open_decord(path, num_threads)
    if reader is None:
        reader = _open_pyav(path, why)
    if len(reader) < min_frames:
        raise BadVideo(path, "too_short", f"{len(reader)} frames, need {min_frames}")
    return reader


def decord_errors() -> tuple[type[BaseException], ...]:
    """What decord raises for a file or frames it cannot read (its own DECORDError, or a bare
    RuntimeError from its C++ side); PyAV gets a second try at those, and only at those."""
    from decord._ffi.base import DECORDError

    return DECORDError, RuntimeError


def _open_decord(path: str, num_threads: int):
    """(decord reader, "") or (None, why): decord stops on what PyAV may still read (no duration)."""
    import decord

    try:
        reader = decord.VideoReader(path, num_threads=num_threads)
        len(reader)
    except decord_errors() as error:
        return None, f"decord: {_short(error)}"
    return reader, ""


def _open_pyav(path: str, why: str) -> PyAVReader:
    """The PyAV reader of a file decord does not read; its length is the frames PyAV decodes.
    A decode error makes the file ``truncated`` (cut off or corrupt), even after good frames."""
    counted = frames_pyav_decodes(path)
    if counted is None:
        raise BadVideo(path, "unreadable", f"{why}; PyAV cannot open it either")
    frames, error = counted
    if error or frames == 0:
        raise BadVideo(path, "truncated", f"{why}; PyAV: {error or 'no frame'} after {frames} frames")
    return PyAVReader(path, frames, why)


def check_size(path: str, height: int, width: int, min_side: int = 16, max_aspect: float = 4.0) -> None:
    """Reject frames too small to crop or too elongated to be a real video (``bad_size``)."""
    if min(height, width) < min_side or max(height, width) > max_aspect * min(height, width):
        raise BadVideo(path, "bad_size", f"{width}x{height} (min side {min_side}, max aspect {max_aspect:g})")


def read_frames(reader, indices: np.ndarray, path: str, min_side: int = 16, max_aspect: float = 4.0) -> np.ndarray:
    """Frames ``indices`` (sorted or not) as uint8 ``(len, H, W, 3)``; decode failures -> BadVideo."""
    return read_frames_saying_decoder(reader, indices, path, min_side, max_aspect)[0]


def read_frames_saying_decoder(reader, indices: np.ndarray, path: str, min_side: int = 16,
                               max_aspect: float = 4.0) -> tuple[np.ndarray, str]:
    """(frames, why PyAV gave them or ""). When decord fails, PyAV decodes the frames again,
    because decord 0.6 cannot copy frames of some widths (16, 24, 48, 72 px, ...) that are
    perfectly valid video: only if PyAV cannot produce them either is the file ``truncated``."""
    if isinstance(reader, PyAVReader):
        return _read_pyav(path, indices, reader.why, min_side, max_aspect), reader.why
    try:
        frames = reader.get_batch([int(i) for i in indices]).asnumpy()
    except decord_errors() as error:
        why = f"decord: {_short(error)}"
        return _read_pyav(path, indices, why, min_side, max_aspect), why
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise BadVideo(path, "bad_size", f"decoder returned shape {frames.shape}")
    return frames, ""


def _read_pyav(path: str, indices: np.ndarray, why: str, min_side: int, max_aspect: float) -> np.ndarray:
    """PyAV's frames, after a header check that rejects a degenerate size without decoding."""
    size = probe_size(path)
    if size is not None:
        check_size(path, *size, min_side=min_side, max_aspect=max_aspect)
    try:
        frames = read_frames_pyav(path, indices)
    except ValueError as error:  # frames changing size
        raise BadVideo(path, "bad_size", str(error)) from None
    if frames is None:
        raise BadVideo(path, "truncated", f"{why}; PyAV decodes fewer than {int(np.max(indices)) + 1} frames")
    return frames


def _short(error: Exception) -> str:
    """The first line of an error, without decord's ``[12:00:00] src/file.cc:270: [path] `` prefix."""
    text = str(error).strip().splitlines()
    line = re.sub(r"^\[[\d:]+\] \S+:\d+: (\[[^\]]*\] ?)?", "", text[0]) if text else ""
    return (line or type(error).__name__)[:200]


def decode_views(path: str, label: int, spec: ClipSpec, mode: str, epoch: int,
                 num_threads: int = 1, key: str | None = None) -> list[tuple[np.ndarray, int]]:
    """All views of one video as ``(clip uint8 (T, h, w, 3), label)``; raises BadVideo."""
    return decode_video(path, label, spec, mode, epoch, num_threads, key).views


def decode_video(path: str, label: int, spec: ClipSpec, mode: str, epoch: int, num_threads: int = 1,
                 key: str | None = None) -> Decoded:
    """All views of one video and the decoder that served it; raises BadVideo.

    One decode pass reads the union of every view's frames (10 test clips share keyframes).
    A flipped training clip takes ``spec.flipped_label(label)``. ``key`` is the video's name
    within its dataset (``VideoRecord.key``; default ``path``): it alone seeds the clip.
    """
    reader = open_video(path, num_threads=num_threads, min_frames=spec.frames)
    rng = clip_rng(spec.seed, epoch, key or path) if mode == "train" else None
    clips = _plan_clips(spec, mode, len(reader), rng, path)
    every = np.unique(np.concatenate(clips))
    frames, why = read_frames_saying_decoder(reader, every, path, spec.min_side, spec.max_aspect)
    views = cut_views(frames, every, clips, rng, path, label, spec, mode)
    if why:
        _say_served_by_pyav(path, why)
    return Decoded(views, "pyav" if why else "decord", why)


@functools.lru_cache(maxsize=8192)
def _say_served_by_pyav(path: str, why: str) -> None:
    """One log line per video and decode process, not one per epoch."""
    log.info("%s: served by PyAV (%s)", path, why)


def views_from_frames(frames: np.ndarray, path: str, label: int, spec: ClipSpec, mode: str,
                      epoch: int, key: str | None = None) -> list[tuple[np.ndarray, int]]:
    """The views :func:`decode_views` gives, cut from a whole decoded video (the cache):
    the same generator, drawn in the same order, over the same frames."""
    if len(frames) < spec.frames:
        raise BadVideo(path, "too_short", f"{len(frames)} frames, need {spec.frames}")
    rng = clip_rng(spec.seed, epoch, key or path) if mode == "train" else None
    clips = _plan_clips(spec, mode, len(frames), rng, path)
    every = np.unique(np.concatenate(clips))
    return cut_views(frames[every], every, clips, rng, path, label, spec, mode)


def _plan_clips(spec: ClipSpec, mode: str, num_frames: int, rng, path: str) -> list[np.ndarray]:
    try:
        return plan_clips(spec, mode, num_frames, rng)
    except TooShortError as error:
        raise BadVideo(path, "too_short", str(error)) from None


def cut_views(frames: np.ndarray, every: np.ndarray, clips: list[np.ndarray], rng, path: str, label: int,
              spec: ClipSpec, mode: str) -> list[tuple[np.ndarray, int]]:
    """Crop every planned clip out of ``frames`` (the frames ``every`` of the video, in order)."""
    height, width = frames.shape[1:3]
    check_size(path, height, width, spec.min_side, spec.max_aspect)
    crops = plan_crops(spec, mode, height, width, rng)
    out = []
    for indices in clips:
        clip_frames = frames[np.searchsorted(every, indices)]
        for crop in crops:
            clip = apply_crop(clip_frames, crop)
            out.append((clip, spec.flipped_label(label) if crop.flip else label))
    return out


__all__ = ["DECORD_EXACT_CODECS", "DECORD_EXACT_CONTAINERS", "REASONS", "BadVideo", "DataHealth",
           "Decoded", "PyAVReader", "TooManyBadVideos", "check_size", "cut_views", "decode_video", "decode_views",
           "open_video", "read_frames", "read_frames_pyav", "read_frames_saying_decoder", "views_from_frames"]
