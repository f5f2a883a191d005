"""Writing real video files with PyAV (H.264 by default), for the synthetic set and tests."""
from __future__ import annotations

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


def probe_size(path: str) -> tuple[int, int] | None:
    """(height, width) of the first video stream from the container header, None if unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            return int(context.height), int(context.width)
    except Exception:
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
    except Exception:
        return None
