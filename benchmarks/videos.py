"""Kinetics-like H.264 videos for the speed benchmarks: made here, so a benchmark needs no dataset.

The data-loading and training benchmarks both decode them; one generator keeps their inputs
alike (moving texture costs about what real footage costs to decode, 2 s GOPs like web video).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.data.annotations import VideoList, VideoRecord
from pipelines.data.video_io import write_video


def kinetics_like_videos(folder: Path, count: int, width: int, height: int, frames: int,
                         seed: int = 0, fps: int = 25, keyframe_interval: int = 50) -> VideoList:
    """Videos with moving texture (cheap to make, costly enough to decode like real footage);
    2 s GOPs by default, as web video; ``keyframe_interval=250`` is YouTube's 8-10 s."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    records = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        if not path.exists():
            fx, fy, speed = rng.uniform(0.02, 0.08, size=3)
            base = rng.uniform(40, 200, size=3).astype(np.float32)
            blocks = rng.uniform(0, 255, size=(height // 32 + 1, width // 32 + 1, 3)).astype(np.float32)
            texture = np.repeat(np.repeat(blocks, 32, 0), 32, 1)[:height, :width]
            video = np.empty((frames, height, width, 3), np.uint8)
            for t in range(frames):
                wave = 60 * np.sin(x * fx + y * fy + t * speed * 10)[..., None]
                shift = np.roll(texture, int(t * speed * 40), axis=1)
                noise = rng.normal(0, 4, size=(height, width, 1))
                video[t] = np.clip(base + wave + 0.4 * shift + noise, 0, 255).astype(np.uint8)
            write_video(path, video, fps=fps, crf=23, options={"g": str(keyframe_interval)})
        records.append(VideoRecord(str(path), index % 2))
    return VideoList(records, ("a", "b"), source=str(folder))
