"""Writing the benchmark as a dataset folder of H.264 files, in parallel processes.

``python run.py data synth --out DIR`` writes ``classes.txt``, ``train.txt`` / ``val.txt`` /
``test.txt``, ``synth.json``, ``videos/<class>/*.mp4`` and ``manifest.json`` (every file's
SHA-256); the rest of the project reads it like any other dataset folder.

The bytes depend on the spec alone: each video is drawn from (seed, class, index) and encoded
by single-threaded x264 (frame threads would make the encoder's decisions depend on timing),
the lists hold paths relative to the folder, and nothing records where or when it was written.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import UsageError
from ..annotations import VideoRecord, write_dataset_folder
from ..manifest import write_manifest
from ..video_io import write_video
from .classes import CLASSES, class_names
from .render import render_video

SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
RENDER_VERSION = "2"  # bumped whenever the same spec would render different videos


@dataclass(frozen=True)
class SyntheticSpec:
    """The size of the benchmark: videos per class, frame side, frames, and its seed.

    ``val_per_class`` / ``test_per_class`` set the held-out splits' sizes (the rest trains);
    by default they are 15% each. A results table's intervals narrow with the test set, so a
    benchmark meant to tell rows apart holds out more than a classifier would need.
    """

    videos_per_class: int = 30
    size: int = 64
    frames: int = 32
    seed: int = 0
    val_per_class: int | None = None
    test_per_class: int | None = None
    clutter: bool = False  # the harder scene: static clutter, 1-3 distractors, heavier noise

    @property
    def folder_name(self) -> str:
        """A name that changes with every field (and with the renderer's version), so two
        benchmarks never share a folder."""
        held_out = "" if self.val_per_class is None and self.test_per_class is None else \
            f"-v{self.val_per_class}-t{self.test_per_class}"
        scene = "-clutter" if self.clutter else ""
        return (f"synthetic{RENDER_VERSION}-n{self.videos_per_class}-s{self.size}-f{self.frames}{held_out}"
                f"{scene}-seed{self.seed}")


def split_sizes(videos_per_class: int, val_per_class: int | None = None,
                test_per_class: int | None = None) -> tuple[int, int, int]:
    """(train, val, test) videos per class; at least one in each."""
    n_val = max(1, round(videos_per_class * SPLIT_FRACTIONS["val"])) if val_per_class is None else val_per_class
    n_test = max(1, round(videos_per_class * SPLIT_FRACTIONS["test"])) if test_per_class is None else test_per_class
    n_train = videos_per_class - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise UsageError(f"{videos_per_class} videos per class cannot hold {n_val} val and {n_test} test videos "
                         "and still train on one; expected at least one in each split")
    return n_train, n_val, n_test


def _write_one(job: tuple[str, str, int, int, int, int, int, bool]) -> str:
    path, name, class_index, index, size, frames, seed, clutter = job
    # The same (seed, class, index) draws the same video, whichever process writes it.
    video = render_video(name, size, frames, seed=[seed, class_index, index], clutter=clutter)
    write_video(path, video, fps=12, options={"threads": "1"})  # parallel across processes instead
    return path


def write_synthetic(out: str | os.PathLike, videos_per_class: int = 30, size: int = 64, frames: int = 32,
                    seed: int = 0, workers: int | None = None, val_per_class: int | None = None,
                    test_per_class: int | None = None, clutter: bool = False) -> dict:
    """Write the benchmark as a dataset folder; returns a summary (counts, seconds).

    Splits are 70/15/15 per class unless ``val_per_class`` / ``test_per_class`` say otherwise
    (at least one video in each split per class).
    """
    if videos_per_class < 3:
        raise UsageError("videos_per_class must be >= 3 (one each for train, val and test)")
    n_train, n_val, n_test = split_sizes(videos_per_class, val_per_class, test_per_class)
    out = Path(out)
    started = time.perf_counter()
    names = class_names()
    jobs, splits = [], {"train": [], "val": [], "test": []}
    for class_index, name in enumerate(names):
        folder = out / "videos" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(videos_per_class):
            path = folder / f"{name}_{index:04d}.mp4"
            jobs.append((str(path), name, class_index, index, size, frames, seed, clutter))
            split = "train" if index < n_train else "val" if index < n_train + n_val else "test"
            splits[split].append(VideoRecord(str(path), class_index))
    workers = workers or os.cpu_count() or 1
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_one, jobs, chunksize=8))
    else:
        for job in jobs:
            _write_one(job)
    write_dataset_folder(out, names, splits)
    meta = {
        "generator": "pipelines.data.synthetic", "version": RENDER_VERSION, "size": size, "frames": frames,
        "seed": seed, "fps": 12, "clutter": clutter,
        "videos_per_class": videos_per_class, "splits": {k: len(v) for k, v in splits.items()},
        "classes": [asdict(c) for c in CLASSES],
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    digest = write_manifest(out)  # the same spec, the same bytes: checked on reuse, logged by every run
    return {"out": str(out), "classes": len(names), "videos": len(jobs), "splits": meta["splits"],
            "fingerprint": digest, "seconds": round(time.perf_counter() - started, 2)}
