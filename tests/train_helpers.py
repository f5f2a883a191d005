"""A small learnable dataset folder of real mp4 files, for the training tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.data.annotations import VideoRecord, write_dataset_folder
from pipelines.data.video_io import write_video

CLASSES = ("red_moves_right", "green_moves_down", "blue_still")


def _clip(label: int, rng: np.random.Generator, frames: int = 16, size: int = 64) -> np.ndarray:
    video = (rng.random((frames, size, size, 3)) * 40).astype(np.uint8)
    x, y = rng.integers(4, size - 20, size=2)
    for t in range(frames):
        dx, dy = [(t, 0), (0, t), (0, 0)][label]
        top, left = min(y + dy, size - 12), min(x + dx, size - 12)
        video[t, top:top + 12, left:left + 12, label] = 230
    return video


def write_tiny_dataset(root: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Three easy classes, ``per_class`` videos of each in each split."""
    per_class = per_class or {"train": 4, "val": 2, "test": 2}
    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in per_class.items():
        records = []
        for label in range(len(CLASSES)):
            for i in range(count):
                path = root / "videos" / f"{split}_{CLASSES[label]}_{i}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, _clip(label, rng))
                records.append(VideoRecord(str(path), label))
        splits[split] = records
    write_dataset_folder(root, CLASSES, splits)
    return root
