"""A public dataset as people have it on disk -> a dataset folder the trainer reads as it is.

``listing`` reads the annotation files and finds each video; ``probing`` opens every found
video on Ray before any training does; ``reencoding`` (optional) makes copies that are cheap
to read clips from; ``folder`` writes the lists of usable videos and the report of the rest.
``run.py data import kinetics|ssv2|list`` is :func:`import_dataset`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .folder import REPORT_FILE, SplitSummary, write_import
from .listing import Listing, kinetics_listing, list_listing, ssv2_listing
from .probing import CACHE_FILE, ProbeCache, probe_all
from .reencoding import ReencodeSummary, Reencoding, reencode_listing

__all__ = ["Imported", "Listing", "REPORT_FILE", "Reencoding", "SplitSummary", "import_dataset", "kinetics_listing",
           "list_listing", "ssv2_listing"]


@dataclass
class Imported:
    """An import's outcome: each split's summary, the videos probed now and those whose probe from
    an earlier import was reused, and what ``--reencode`` did (None without it)."""

    splits: dict[str, SplitSummary]
    probed: int
    reused: int
    reencoded: ReencodeSummary | None = None


def import_dataset(listing: Listing, out: str | Path, *, reencode: Reencoding | None = None,
                   reencode_to: str | Path | None = None, progress=None) -> Imported:
    """Probe every found video of ``listing`` (what an earlier import probed is reused), re-encode
    the usable ones if asked (into ``reencode_to``, default beside the videos folder), and write
    the dataset folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = ProbeCache(out / CACHE_FILE)
    paths = sorted({video.path for wanted in listing.splits.values() for video in wanted if video.path})
    probes, reused = probe_all(paths, cache, progress=progress)
    summary = None
    if reencode is not None:
        folder = Path(reencode_to).expanduser().resolve() if reencode_to else reencode.folder_for(listing.videos)
        if progress is not None:
            progress.set_description("re-encoding")
            progress.reset(total=sum(not probes[p]["reason"] for p in paths))
        listing, probes, summary = reencode_listing(listing, probes, reencode, folder, cache, progress=progress)
    return Imported(write_import(out, listing, probes), len(paths) - reused, reused, summary)
