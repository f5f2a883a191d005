"""What an import is asked for: each split's videos as the annotation files name them, found on disk.

The three sources (Kinetics CSVs, Something-Something V2 JSON, MMAction2 / PySlowFast lists)
become one :class:`Listing`: the class names, and per split the :class:`Wanted` videos with
their class index and the file found for each (None when there is none). Kinetics and SSv2
files are found by name, from one walk of the videos folder, so every layout people keep them
in reads as it is: nested (``<split>/<label>/<name>``), flat per split (``<split>/<name>``) or
flat (``<name>``), as ``.mp4``, ``.mkv`` or ``.webm`` (what the download scripts leave).
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ...errors import UsageError
from ..annotations import AnnotationError, read_classes, read_generic_list
from ..formats import KineticsRow, kinetics_rows, left_right_swap, read_ssv2

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm")
# The split names annotation files use, and the dataset folder's list each one becomes.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validate": "val",
               "validation": "val", "test": "test", "testing": "test"}


@dataclass(frozen=True)
class Wanted:
    """One video an annotation file names: its split, class index, name, and the file found (or None)."""

    split: str
    label: int
    name: str
    path: str | None


@dataclass
class Listing:
    """The classes and every split's wanted videos; ``flip_map`` when the classes name left and right."""

    classes: tuple[str, ...]
    splits: dict[str, list[Wanted]]
    videos: Path
    flip_map: dict[int, int] | None = None
    notes: list[str] = field(default_factory=list)


class VideoIndex:
    """Every video file under a folder, by name without extension (one walk: a Kinetics copy has
    300,000 files, and a lookup per file name would cost a ``stat`` per layout and extension)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise UsageError(f"--videos {root}: no such folder")
        self.root = root
        self.by_stem: dict[str, list[str]] = defaultdict(list)
        for folder, _, files in os.walk(root, followlinks=True):
            for name in files:
                stem, extension = os.path.splitext(name)
                if extension.lower() in VIDEO_EXTENSIONS:
                    self.by_stem[stem].append(os.path.join(folder, name))

    def find(self, stems: Sequence[str], split: str) -> str | None:
        """The file named by the first of ``stems`` found; of several, the one under a folder
        named for ``split`` (``val/``, ``validate/``, ...), else the first in sorted order."""
        for stem in stems:
            found = sorted(self.by_stem.get(stem, ()))
            if found:
                in_split = [p for p in found if _split_of_folder(Path(p).relative_to(self.root)) == split]
                return (in_split or found)[0]
        return None


def _split_of_folder(relative: Path) -> str | None:
    return SPLIT_NAMES.get(relative.parts[0].lower()) if len(relative.parts) > 1 else None


def split_name(name: str, file: str | os.PathLike, line: int | None, field_name: str = "split") -> str:
    """``validate`` -> ``val``: the dataset folder's name for an annotation file's split."""
    try:
        return SPLIT_NAMES[name.strip().lower()]
    except KeyError:
        raise AnnotationError(file, line, field_name, f"split {name!r} (expected train, val, validate, "
                              "validation or test)") from None


# ---------------------------------------------------------------- Kinetics


def kinetics_listing(csv_files: Sequence[str | os.PathLike], videos: str | os.PathLike) -> Listing:
    """The official Kinetics CSVs (``label,youtube_id,time_start,time_end,split``) over a videos folder.

    Classes are the training split's labels, sorted (as every Kinetics codebase numbers them). A
    split without labels (the challenge's test CSV) is left out, and said so in ``notes``.
    """
    rows: list[tuple[Path, KineticsRow, str]] = []
    for csv_file in csv_files:
        for row in kinetics_rows(csv_file, allow_unlabelled=True):
            rows.append((Path(csv_file), row, split_name(row.split, csv_file, row.line)))
    classes = tuple(sorted({row.label for _, row, split in rows if split == "train"}))
    if not classes:
        raise UsageError(f"no training rows in {', '.join(map(str, csv_files))} (expected a split column "
                         "with 'train')")
    index = {name: i for i, name in enumerate(classes)}
    found = VideoIndex(Path(videos))
    splits: dict[str, list[Wanted]] = defaultdict(list)
    unlabelled: dict[str, int] = defaultdict(int)
    for csv_file, row, split in rows:
        if row.label is None:
            if split != "test":
                raise AnnotationError(csv_file, 1, "header", f"no label column, but {split} rows need labels")
            unlabelled[csv_file.name] += 1
            continue
        if row.label not in index:
            raise AnnotationError(csv_file, row.line, "label", f"class {row.label!r} is not in the training split")
        name = row.file_name("")
        path = found.find([name, row.youtube_id], split)
        splits[split].append(Wanted(split, index[row.label], name, path))
    notes = [f"{file}: {count} test videos without labels, left out" for file, count in unlabelled.items()]
    return Listing(classes, dict(splits), found.root, notes=notes)


# ---------------------------------------------------------------- Something-Something V2


def ssv2_listing(labels_json: str | os.PathLike, split_files: dict[str, str | os.PathLike],
                 videos: str | os.PathLike) -> Listing:
    """``labels.json`` and the split JSON files (``{"train": train.json, "val": validation.json}``).

    Class indices are the ones ``labels.json`` gives (the official numbering); the left/right
    label map for flipped clips comes with them (``formats.left_right_swap``).
    """
    found = VideoIndex(Path(videos))
    splits, classes = {}, ()
    for split, file in split_files.items():
        videos_of_split = read_ssv2(labels_json, file, found.root)
        classes = videos_of_split.classes
        splits[split] = [Wanted(split, record.label, Path(record.key).stem,
                                found.find([Path(record.key).stem], split))
                         for record in videos_of_split.records]
    return Listing(classes, splits, found.root, flip_map=left_right_swap(classes) or None)


# ---------------------------------------------------------------- generic lists


def list_listing(classes_file: str | os.PathLike, split_files: dict[str, str | os.PathLike],
                 videos: str | os.PathLike) -> Listing:
    """``classes.txt`` and MMAction2 / PySlowFast lists (``relative/path.mp4 label``), paths
    relative to the videos folder."""
    root = Path(videos)
    if not root.is_dir():
        raise UsageError(f"--videos {root}: no such folder")
    classes = read_classes(classes_file)
    splits = {}
    for split, file in split_files.items():
        records = read_generic_list(file, root, num_classes=len(classes))
        splits[split] = [Wanted(split, record.label, record.key,
                                record.path if os.path.isfile(record.path) else None) for record in records]
    return Listing(classes, splits, root)
