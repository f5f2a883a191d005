"""A small learnable dataset folder of real mp4 files, for the training tests."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil

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


class PausePoints:
    """The test's side of ``pipelines.training.pause_points``: hold a run at a named point, wait
    until it is there (then kill it at exactly that phase), release it, count its arrivals."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        from pipelines.training.pause_points import PAUSE_DIR_ENV

        return {PAUSE_DIR_ENV: str(self.folder)}

    def hold(self, run: str, point: str) -> None:
        (self.folder / f"{run}.{point}.hold").touch()

    def release(self, run: str, point: str) -> None:
        (self.folder / f"{run}.{point}.hold").unlink(missing_ok=True)

    def arrivals(self, run: str, point: str) -> int:
        marker = self.folder / f"{run}.{point}"
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    def arriving_pid(self, run: str, point: str) -> int:
        """The process that reached ``point`` last (each arrival writes its pid)."""
        return int((self.folder / f"{run}.{point}").read_text().split()[-1])

    def wait(self, run: str, point: str, *, timeout: float = 600.0, still_running=lambda: True) -> None:
        """Until ``run`` has reached ``point`` (a loaded 2-core machine is slow: the timeout is
        generous); fails at once if ``still_running()`` turns false first."""
        import time

        deadline = time.monotonic() + timeout
        while self.arrivals(run, point) == 0:
            if not still_running():
                raise AssertionError(f"{run} ended before it reached {point}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{run} did not reach {point} within {timeout:.0f} s")
            time.sleep(0.1)


def stop_session(session: int, timeout: float = 60.0) -> None:
    """Kill every process left in ``session`` (the invocation's own, started with it) and wait until
    none is left. Its Ray worker processes lead process groups of their own: killing the driver's
    group leaves them running until they notice their raylet gone."""
    deadline = time.monotonic() + timeout
    while left := [p.pid for p in psutil.process_iter(["status"])
                   if p.info["status"] != psutil.STATUS_ZOMBIE and session_of(p.pid) == session]:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.monotonic() < deadline, f"processes {left} of session {session} outlived SIGKILL"
        time.sleep(0.1)


def session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None
