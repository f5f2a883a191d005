"""Every video of an import opened before training: a Ray Data job over the cluster's CPUs.

A real Kinetics copy lacks some videos and holds some that no decoder reads; a run would find
them epoch by epoch. Probing opens each file with the decoders training uses
(``decoding.open_video``: decord where it reads exactly, else PyAV), reads its first and last
frame, and keeps its frame count, size and decoder, or the reason it is bad (``decoding.REASONS``).

Results are kept in ``probes.jsonl`` in the dataset folder, keyed by path, size and modification
time, and appended as they come: a rerun, or one after an interruption, probes only what is new
or changed.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from ..decoding import BadVideo, check_size, open_video, read_frames_saying_decoder
from ..video_io import file_stamp

log = logging.getLogger(__name__)

CACHE_FILE = "probes.jsonl"
# Videos per Ray Data batch: one probe is tens of milliseconds, so a batch is a few seconds of work.
BATCH = 16


def probe_video(path: str, min_side: int = 16, max_aspect: float = 4.0) -> dict:
    """``{"reason", "detail", "frames", "height", "width", "decoder"}`` of one file: ``reason`` is ""
    for a usable video (``detail`` then says why PyAV, not decord, serves it, if it does)."""
    try:
        reader = open_video(path)
        frames = len(reader)
        ends = np.unique([0, frames - 1])
        decoded, why = read_frames_saying_decoder(reader, ends, path, min_side, max_aspect)
        height, width = decoded.shape[1:3]
        check_size(path, height, width, min_side, max_aspect)
    except BadVideo as bad:
        return {"reason": bad.reason, "detail": bad.detail, "frames": 0, "height": 0, "width": 0, "decoder": ""}
    return {"reason": "", "detail": why, "frames": int(frames), "height": int(height), "width": int(width),
            "decoder": "pyav" if why else "decord"}


def _stamp(path: str) -> dict:
    """What a probe is kept under besides the path: the file's size and modification time."""
    try:
        size, mtime = file_stamp(path)
    except OSError:
        return {"size": -1, "mtime_ns": -1}
    return {"size": size, "mtime_ns": mtime}


def as_columns(rows: list[dict]) -> dict:
    """Rows of equal keys -> the columns of a Ray Data batch."""
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def probe_batch(batch: dict) -> dict:
    """A Ray Data batch of paths -> their probes and stamps."""
    return as_columns([{"path": str(path), **_stamp(str(path)), **probe_video(str(path))} for path in batch["path"]])


class ProbeCache:
    """``probes.jsonl``: one line per probed file; a line whose file has since changed is not used."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.probes: dict[str, dict] = {}
        if file.exists():
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # the last line of an interrupted probe
                    continue
                self.probes[entry["path"]] = entry

    def get(self, path: str) -> dict | None:
        entry = self.probes.get(path)
        return entry if entry is not None and {k: entry[k] for k in ("size", "mtime_ns")} == _stamp(path) else None

    def add(self, entries: Iterable[dict]) -> None:
        with self.file.open("a", encoding="utf-8") as handle:
            for entry in entries:
                self.probes[entry["path"]] = entry
                handle.write(json.dumps(entry, default=lambda value: value.item()) + "\n")  # numpy scalars


def probe_all(paths: list[str], cache: ProbeCache, *, progress=None) -> tuple[dict[str, dict], int]:
    """Every path's probe (from ``cache`` where the file is unchanged, else from a Ray Data job
    spread over the cluster's CPUs); returns (path -> probe, how many were reused). ``progress``
    (a tqdm bar) counts the videos probed now."""
    import ray

    todo = sorted({p for p in paths if cache.get(p) is None})
    reused = len(set(paths)) - len(todo)
    if progress is not None:
        progress.reset(total=len(todo))
    if todo:
        log.info("probing %d video(s) on Ray (%d probed before, unchanged)", len(todo), reused)
        blocks = max(1, min(len(todo) // BATCH + 1, 4 * int(ray.cluster_resources().get("CPU", 1))))
        dataset = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=blocks)
        probed = dataset.map_batches(probe_batch, batch_size=BATCH, batch_format="numpy", num_cpus=1)
        for batch in probed.iter_batches(batch_size=BATCH, batch_format="pandas"):
            entries = batch.to_dict("records")
            cache.add(entries)
            if progress is not None:
                progress.update(len(entries))
    return {p: cache.probes[p] for p in paths}, reused
