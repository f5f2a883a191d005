"""Videos re-encoded for cheap clip reads: H.264 in MP4, the short side training needs, frequent keyframes.

A dense 8x8 Kinetics clip spans 57 frames. In a file as YouTube serves it (H.264, a keyframe
every 250 frames) the decoder starts at the keyframe before the clip's first frame, so most of
the frames it decodes are thrown away, and a 340x256 frame costs more to decode and resize than
the 256 px the recipe scales to. MMAction2 and PySlowFast users resize and re-encode their videos
before training for this reason; ``run.py data import ... --reencode`` does it on the cluster,
and ``run.py bench decode`` measures what it buys.

Copies are written to their own folder (never over a source), through a ``.partial`` file
renamed when complete: a rerun skips the copies already made and redoes a half-written one.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from ...errors import UsageError
from ..video_io import unreadable_by_pyav
from .listing import Listing
from .probing import ProbeCache, as_columns, probe_all

log = logging.getLogger(__name__)

SETTINGS_FILE = "reencode.json"


@dataclass(frozen=True)
class Reencoding:
    """What the copies are: H.264 (``crf``) in MP4, short side at most ``short_side`` (never
    enlarged), a keyframe every ``keyframe_interval`` frames (the most a clip's frame costs)."""

    short_side: int = 320
    keyframe_interval: int = 8
    crf: int = 20

    def size_for(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the copy: the short side scaled down to ``short_side``, both even (x264)."""
        scale = min(1.0, self.short_side / min(height, width))
        return 2 * max(1, round(height * scale / 2)), 2 * max(1, round(width * scale / 2))

    def folder_for(self, videos: Path) -> Path:
        """The copies' default folder, beside the videos folder: ``K400`` -> ``K400-320p-k8``."""
        return videos.with_name(f"{videos.name}-{self.short_side}p-k{self.keyframe_interval}")

    def claim(self, folder: Path) -> None:
        """Mark ``folder`` as holding copies made with these settings; one made with others stops."""
        folder.mkdir(parents=True, exist_ok=True)
        settings = folder / SETTINGS_FILE
        if settings.exists() and json.loads(settings.read_text()) != asdict(self):
            raise UsageError(f"{folder} holds copies re-encoded with {settings.read_text().strip()}, not "
                             f"{json.dumps(asdict(self))}; choose another --reencode-to")
        settings.write_text(json.dumps(asdict(self)) + "\n")


def reencode_video(source: str, target: str, spec: Reencoding) -> dict:
    """Re-encode ``source`` to ``target`` unless ``target`` is already there; returns
    ``{"source", "target", "reason", "detail", "bytes_in", "bytes_out", "seconds", "made"}``
    (``reason`` is "" for a usable copy, else why there is none)."""
    import av

    began, made = time.perf_counter(), False
    result = {"source": source, "target": target, "reason": "", "detail": ""}
    if not os.path.exists(target):
        partial = f"{target}.partial"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            _transcode(source, partial, spec)
            os.replace(partial, target)
            made = True
        except (*unreadable_by_pyav(), av.ValueError) as error:
            result.update(reason="reencode_failed", detail=(str(error).splitlines() or [type(error).__name__])[0][:200])
    return {**result, "bytes_in": os.path.getsize(source),
            "bytes_out": os.path.getsize(target) if os.path.exists(target) else 0,
            "seconds": time.perf_counter() - began, "made": made}


def _transcode(source: str, target: str, spec: Reencoding) -> None:
    """Decode with PyAV, scale with swscale, encode with x264: one frame at a time, audio dropped."""
    import av

    with av.open(source) as src, av.open(target, "w", format="mp4") as out:
        video = src.streams.video[0]
        video.thread_type = "AUTO"
        height, width = spec.size_for(video.codec_context.height, video.codec_context.width)
        rate = video.average_rate or Fraction(30)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        interval = spec.keyframe_interval
        # No B-frames and x264's fastdecode tuning (CAVLC, no deblocking): a frame decodes without
        # waiting for later ones, and faster, for a larger file (bench decode measures both).
        stream.options = {"crf": str(spec.crf), "preset": "veryfast", "tune": "fastdecode", "g": str(interval),
                          "x264-params": f"keyint={interval}:min-keyint={interval}:scenecut=0:bframes=0"}
        for number, frame in enumerate(src.decode(video)):  # numbered as shown: the frames training counts
            copy = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
            copy.pts, copy.time_base = number, 1 / Fraction(rate)
            copy.pict_type = 0  # not the source's frame type: x264 would keep its keyframes as forced ones
            for packet in stream.encode(copy):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def reencode_batch(batch: dict, spec: Reencoding) -> dict:
    """A Ray Data batch of (source, target) pairs -> their results (columns of equal length)."""
    return as_columns([reencode_video(str(s), str(t), spec) for s, t in zip(batch["source"], batch["target"])])


def reencode_all(pairs: list[tuple[str, str]], spec: Reencoding, *, progress=None) -> dict[str, dict]:
    """Every (source, target) re-encoded on the cluster's CPUs (a Ray Data job, one video per task
    call: a copy takes seconds); source -> result. Copies already made are only measured."""
    import ray

    if not pairs:
        return {}
    todo = [p for p in pairs if not os.path.exists(p[1])]
    log.info("re-encoding %d video(s) on Ray (%d made before)", len(todo), len(pairs) - len(todo))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    dataset = ray.data.from_items([{"source": s, "target": t} for s, t in pairs],
                                  override_num_blocks=max(1, min(len(pairs), 4 * cpus)))
    done = dataset.map_batches(reencode_batch, fn_kwargs={"spec": spec}, batch_size=1, batch_format="numpy",
                               num_cpus=1)
    results = {}
    for row in done.iter_rows():
        results[row["source"]] = dict(row)
        if progress is not None:
            progress.update(1)
    return results


@dataclass
class ReencodeSummary:
    """What ``--reencode`` did: where the copies are, how many were made now or before, what
    they cost on disk against their sources, and the copies that failed."""

    folder: Path
    made: int
    before: int
    bytes_in: int
    bytes_out: int
    failed: int


def reencode_listing(listing: Listing, probes: dict[str, dict], spec: Reencoding, folder: Path,
                     cache: ProbeCache, *, progress=None) -> tuple[Listing, dict[str, dict], ReencodeSummary]:
    """Every usable video of ``listing`` re-encoded into ``folder`` (same relative path, ``.mp4``)
    and the copies probed; returns the listing naming the copies, their probes, and the summary.
    A video left out before stays out, with the reason its source had."""
    spec.claim(folder)
    copy_of = {path: str(folder / Path(os.path.relpath(path, listing.videos)).with_suffix(".mp4"))
               for path in sorted({v.path for w in listing.splits.values() for v in w if v.path})
               if not probes[path]["reason"]}
    results = reencode_all(list(copy_of.items()), spec, progress=progress)
    made = [r for r in results.values() if not r["reason"]]
    copies, _ = probe_all([r["target"] for r in made], cache)
    failed = {r["target"]: {**probes[r["source"]], "reason": r["reason"], "detail": r["detail"]}
              for r in results.values() if r["reason"]}
    copies.update(failed)
    copies.update({path: probe for path, probe in probes.items() if path not in copy_of})
    splits = {split: [dataclasses.replace(v, path=copy_of.get(v.path, v.path)) for v in wanted]
              for split, wanted in listing.splits.items()}
    moved = dataclasses.replace(listing, splits=splits, videos=folder)
    summary = ReencodeSummary(folder, sum(r["made"] for r in made), sum(not r["made"] for r in made),
                              sum(int(r["bytes_in"]) for r in made), sum(int(r["bytes_out"]) for r in made), len(failed))
    return moved, copies, summary
