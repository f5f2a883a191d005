"""An import's result: a dataset folder the trainer reads as it is, and the report of what was left out.

The folder holds ``classes.txt``, ``train.txt`` / ``val.txt`` / ``test.txt`` with the usable
videos only, ``import_report.csv`` (split, path, reason, detail) for every video left out, and
``flip_map.txt`` when the classes name left and right. The lists name videos through a link,
``videos`` -> the videos folder, so a video's key (the path its list gives, which seeds its
clips) is ``videos/<its path under the folder>``: the same on every machine, whatever the
folder is called there (re-point the link after moving the videos).
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UsageError
from ..annotations import CLASSES_FILE, SPLITS, write_classes
from ..folders import FLIP_MAP_FILE, write_flip_map
from .listing import Listing, Wanted

REPORT_FILE = "import_report.csv"
VIDEOS_LINK = "videos"


@dataclass
class SplitSummary:
    """One split of an import: listed, found on disk, usable, left out by reason, served by PyAV."""

    listed: int = 0
    found: int = 0
    usable: int = 0
    skipped: Counter = field(default_factory=Counter)
    pyav: int = 0


def videos_prefix(out: Path, videos: Path) -> str:
    """How the lists in ``out`` name the videos folder: its path inside ``out`` when it is there,
    else the :data:`VIDEOS_LINK` made (or found) in ``out``."""
    videos, out = videos.resolve(), out.resolve()
    if videos == out or out in videos.parents:
        return videos.relative_to(out).as_posix()
    link = out / VIDEOS_LINK
    if link.is_symlink() and link.resolve() != videos:
        link.unlink()  # the videos moved: re-point
    if not link.exists():
        link.symlink_to(videos, target_is_directory=True)
    elif link.resolve() != videos:
        raise UsageError(f"{link} is not a link to {videos}; remove it or choose another --out")
    return VIDEOS_LINK


def write_import(out: Path, listing: Listing, probes: dict[str, dict]) -> dict[str, SplitSummary]:
    """Write the dataset folder from ``listing`` and each found file's probe; returns the summaries.

    Without a test split, ``test.txt`` is the validation list (as papers report Kinetics), and
    ``listing.notes`` says so. A split left with no usable video stops, once the report is written.
    """
    prefix = videos_prefix(out, listing.videos)
    summaries, report, lists = {}, [], {}
    for split, wanted in listing.splits.items():
        summary, lines = SplitSummary(listed=len(wanted)), []
        for video in wanted:
            reason, detail = _verdict(video, probes, listing.videos)
            if reason:
                summary.skipped[reason] += 1
                report.append((split, video.path or video.name, reason, detail))
                continue
            summary.usable += 1
            summary.pyav += probes[video.path]["decoder"] == "pyav"
            relative = Path(os.path.relpath(video.path, listing.videos)).as_posix()
            lines.append(f"{'' if prefix == '.' else prefix + '/'}{relative} {video.label}\n")
        summary.found = summary.listed - summary.skipped["missing"]
        summaries[split], lists[split] = summary, lines
    if "test" not in lists and "val" in lists:
        lists["test"] = lists["val"]
        listing.notes.append("no labelled test split: test.txt is the validation list")
    _write_report(out / REPORT_FILE, report)
    empty = [split for split in SPLITS if not lists.get(split)]
    if empty:
        raise UsageError(f"no usable video in the {', '.join(empty)} split(s); see {out / REPORT_FILE}")
    write_classes(out / CLASSES_FILE, listing.classes)
    for split in SPLITS:
        _replace_text(out / f"{split}.txt", "".join(lists[split]))
    if listing.flip_map:
        write_flip_map(out / FLIP_MAP_FILE, listing.flip_map)
    return summaries


def _verdict(video: Wanted, probes: dict[str, dict], videos: Path) -> tuple[str, str]:
    if video.path is None:
        named = video.name if Path(video.name).suffix else f"{video.name} (.mp4, .mkv or .webm)"
        return "missing", f"no {named} under {videos}"
    probe = probes[video.path]
    return probe["reason"], probe["detail"] if probe["reason"] else ""


def _write_report(file: Path, rows: list[tuple[str, str, str, str]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(("split", "path", "reason", "detail"))
    writer.writerows(rows)
    _replace_text(file, text.getvalue())


def _replace_text(file: Path, text: str) -> None:
    """Write beside, then rename: a list is never seen half-written."""
    partial = file.with_name(file.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:  # CSV's own line ends kept
        handle.write(text)
    os.replace(partial, file)
