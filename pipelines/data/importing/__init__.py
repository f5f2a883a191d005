"""A public dataset as people have it on disk -> a dataset folder the trainer reads as it is.

``listing`` reads the annotation files and finds each video; ``probing`` opens every found
video on Ray before any training does; ``folder`` writes the lists of usable videos and the
report of the rest. ``run.py data import kinetics|ssv2|list`` is :func:`import_dataset`.
"""
from __future__ import annotations

from pathlib import Path

from .folder import REPORT_FILE, SplitSummary, write_import
from .listing import Listing, kinetics_listing, list_listing, ssv2_listing
from .probing import CACHE_FILE, ProbeCache, probe_all

__all__ = ["Listing", "REPORT_FILE", "SplitSummary", "import_dataset", "kinetics_listing", "list_listing",
           "ssv2_listing"]


def import_dataset(listing: Listing, out: str | Path, *, progress=None) -> tuple[dict[str, SplitSummary], int]:
    """Probe every found video of ``listing`` (what an earlier import probed is reused) and write the
    dataset folder ``out``; returns each split's summary and how many probes were reused."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [video.path for wanted in listing.splits.values() for video in wanted if video.path]
    if progress is not None:
        progress.total = len(set(paths))
    probes, reused = probe_all(paths, ProbeCache(out / CACHE_FILE), progress=progress)
    return write_import(out, listing, probes), reused
