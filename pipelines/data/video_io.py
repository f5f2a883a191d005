"""Video files through PyAV: writing them (H.264 by default, for the synthetic set and tests),
reading their headers, and decoding the videos decord cannot read, or cannot read exactly.

PyAV decodes from the first frame and numbers frames as they come out of the decoder, so the
frame it calls ``i`` is the ``i``-th frame shown, whatever the container says about timestamps,
durations or frame counts. That is slower than decord's seeking, and it is why PyAV is the
decoder of last resort (``pipelines.data.decoding`` chooses).
"""
from __future__ import annotations

import functools
import os
from typing import Iterable

import numpy as np


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: int = 25,
                codec: str = "libx264", crf: int = 18, options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> None:
    """Encode uint8 RGB frames ``(T, H, W, 3)`` to ``path``.

    x264 with yuv420p needs even width and height, so those are checked up front rather than
    failing inside the encoder; other codecs (``"mpeg4"``) accept odd sizes. ``options`` go
    to the encoder, ``container_options`` to the muxer (``{"movflags": "+faststart"}``).
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if codec == "libx264" and (width % 2 or height % 2):
        raise ValueError(f"H.264 (yuv420p) needs even sides, got {width}x{height}")
    stream_options = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
    stream_options.update(options or {})
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = stream_options
        if codec != "libx264":
            stream.bit_rate = 20_000_000  # near-lossless, so test patterns survive
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def numbered_frames(count: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Frames whose index is written in their colour, for checking exact sampled indices.

    Red and green are flat over the whole frame and carry the index (``t % 16``, ``t // 16``,
    16 grey levels apart), so any crop, resize or lossy coding still reads back; blue ramps
    from left to right, so a mirrored frame is recognisable. Up to 256 frames.
    """
    if count > 256:
        raise ValueError(f"{count} frames: at most 256 can be numbered")
    t = np.arange(count)
    frames = np.empty((count, height, width, 3), np.uint8)
    frames[..., 0] = ((t % 16) * 16 + 8)[:, None, None]
    frames[..., 1] = ((t // 16) * 16 + 8)[:, None, None]
    frames[..., 2] = np.linspace(16, 240, width).round().astype(np.uint8)[None, None, :]
    return frames


def read_frame_number(frame: np.ndarray) -> int:
    """Inverse of :func:`numbered_frames` for one decoded (maybe cropped, resized, mirrored) frame."""
    red, green = (float(np.median(frame[..., c])) for c in (0, 1))
    return int(round((green - 8) / 16)) * 16 + int(round((red - 8) / 16))


def is_mirrored(frame: np.ndarray) -> bool:
    """True when the blue ramp of a :func:`numbered_frames` frame runs right to left."""
    blue = frame[..., 2].astype(np.float64).mean(axis=0)
    return bool(blue[-1] < blue[0])


def unreadable_by_pyav() -> tuple[type[BaseException], ...]:
    """What PyAV raises for a file it cannot read: FFmpeg's own errors (a missing file, bad data,
    a stream cut short), OSError for the read itself, IndexError for a container without a video
    stream. Anything else, a broken install or a bug, is not a bad video and propagates."""
    import av

    return av.FFmpegError, OSError, IndexError


def probe_size(path: str) -> tuple[int, int] | None:
    """(height, width) of the first video stream from the container header, None if unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            return int(context.height), int(context.width)
    except unreadable_by_pyav():
        return None


def probe_frames(path: str) -> tuple[int, int, int] | None:
    """(frames, height, width) of the first video stream from the container header, None if unknown.

    The frame count comes from the stream's own count, else its duration times its rate.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = stream.frames
            if not frames and stream.duration and stream.average_rate:
                frames = int(float(stream.duration * stream.time_base) * float(stream.average_rate))
            context = stream.codec_context
            return (int(frames), int(context.height), int(context.width)) if frames else None
    except unreadable_by_pyav():
        return None


def probe_codec(path: str) -> tuple[str, str] | None:
    """(container format, codec) of the first video stream as FFmpeg names them, e.g.
    ``("mov,mp4,m4a,3gp,3g2,mj2", "h264")``; None if PyAV cannot open it or it has no video."""
    import av

    try:
        with av.open(str(path)) as container:
            return container.format.name, container.streams.video[0].codec_context.name
    except unreadable_by_pyav():
        return None


def count_frames_pyav(path: str) -> tuple[int, str] | None:
    """(frames PyAV decodes from ``path``, the error that stopped it or "" at a clean end); None
    if it cannot open the file or finds no video stream in it.

    Decoding every frame is the only count a file with no (or a wrong) frame count in its
    header gives; the frames are not converted to RGB, which is most of the cost. Decoding stops
    at the first error: an MP4 cut short ends in one, while a cut Ogg or raw stream just ends.
    """
    import av

    try:
        container = av.open(str(path))
    except unreadable_by_pyav():
        return None
    count = 0
    with container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        stream.thread_type = "NONE"  # one decode thread: parallelism comes from more actors
        try:
            for _ in container.decode(stream):
                count += 1
        except unreadable_by_pyav() as error:
            return count, (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return count, ""


def read_frames_pyav(path: str, indices) -> np.ndarray | None:
    """Frames ``indices`` (any order, repeats allowed) as uint8 ``(len, H, W, 3)``, decoded from
    the start; None if any of them cannot be decoded. Frames that change size raise ValueError."""
    import av

    wanted = {int(i) for i in indices}
    found: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            for number, frame in enumerate(container.decode(stream)):
                if number in wanted:
                    found[number] = frame.to_ndarray(format="rgb24")
                if number >= max(wanted):
                    break
    except unreadable_by_pyav():
        return None
    if len(found) != len(wanted):
        return None
    if len({frame.shape for frame in found.values()}) > 1:
        raise ValueError(f"frames change size: {sorted({f.shape[1::-1] for f in found.values()})}")
    return np.stack([found[int(i)] for i in indices])


# What decord 0.6 was measured to read exactly (every sorted or unsorted batch of frames asked for,
# with and without B-frames): H.264, VP8 and VP9 in MP4/MOV and Matroska/WebM, which covers
# Kinetics (H.264 MP4) and Something-Something V2 (VP9 WebM). Elsewhere it can return the wrong
# frames without an error: HEVC with B-frames; MPEG-4 Part 2 (XviD) and MPEG-1/2 with B-frames in
# any container; H.264 or MPEG-2 in AVI, MPEG-PS and MPEG-TS (asked for frames 40 and 41 of an
# MPEG-4 AVI it returned 9 and 10). Those files are decoded by PyAV.
DECORD_EXACT_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
DECORD_EXACT_CODECS = frozenset({"h264", "vp8", "vp9"})


class PyAVReader:
    """What ``decoding.open_video`` returns when PyAV decodes the video: its length (the frames PyAV
    decodes) and ``why`` decord does not (its error, or the container and codec it misreads)."""

    decoder = "pyav"

    def __init__(self, path: str, num_frames: int, why: str) -> None:
        self.path, self.num_frames, self.why = path, num_frames, why

    def __len__(self) -> int:
        return self.num_frames


def file_stamp(path: str) -> tuple[int, int]:
    """(size, mtime): what the per-process caches below key on, so a rewritten file is seen anew."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def frames_pyav_decodes(path: str) -> tuple[int, str] | None:
    """:func:`count_frames_pyav`, counted once per file and process (a decode actor lives for the
    run), not once per epoch: counting decodes the whole video."""
    return _count_frames(path, *file_stamp(path))


@functools.lru_cache(maxsize=8192)
def _count_frames(path: str, size: int, mtime: int) -> tuple[int, str] | None:
    return count_frames_pyav(path)


@functools.lru_cache(maxsize=1 << 16)
def _container_and_codec(path: str, size: int, mtime: int) -> tuple[str, str] | None:
    return probe_codec(path)


def decord_misreads(path: str) -> str:
    """Why decord must not read ``path`` (a container or codec it does not read exactly), or ""
    to try it. Probed once per file and process."""
    probed = _container_and_codec(path, *file_stamp(path))
    if probed is None or (probed[0] in DECORD_EXACT_CONTAINERS and probed[1] in DECORD_EXACT_CODECS):
        return ""  # unknown to PyAV: decord may still read it
    return f"decord does not read {probed[1]} in {probed[0].split(',')[0]} exactly"
