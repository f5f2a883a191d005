"""The public datasets' own annotation files, read into the same :class:`VideoList`.

- Kinetics-400 CSV: ``label,youtube_id,time_start,time_end,split``;
- Something-Something V2 JSON: ``labels.json`` + ``train.json`` / ``validation.json``,
  and the label swaps a horizontal flip needs (:func:`left_right_swap`).

Errors name the file, the line (or JSON entry) and the field, as every reader here does.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import UsageError
from .annotations import AnnotationError, VideoList, VideoRecord

# ---------------------------------------------------------------- Kinetics-400

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


def kinetics_file_name(youtube_id: str, start: int, end: int, extension: str = ".mp4") -> str:
    """The usual clip name of the Kinetics download scripts: ``<id>_<start:06d>_<end:06d>.mp4``."""
    return f"{youtube_id}_{start:06d}_{end:06d}{extension}"


def read_kinetics_csv(csv_file: str | os.PathLike, root: str | os.PathLike,
                      classes: Sequence[str] | None = None, layout: str = "auto",
                      extension: str = ".mp4") -> VideoList:
    """Kinetics-400 CSV -> records.

    Videos live at ``<root>/<split>/<label>/<id>_<start>_<end>.mp4`` (``layout="nested"``) or
    directly under ``root`` (``layout="flat"``); ``"auto"`` picks nested when ``<root>/<split>``
    exists for the first row. ``classes`` defaults to the sorted labels of this CSV; pass the
    training split's classes when reading validation so indices agree. (``run.py data import
    kinetics`` finds the files whatever the layout, and checks each one: ``pipelines.data.importing``.)
    """
    if layout not in ("auto", "nested", "flat"):
        raise UsageError(f"layout {layout!r}: expected auto, nested or flat")
    csv_file, root = Path(csv_file), Path(root)
    rows = list(kinetics_rows(csv_file))
    names = tuple(classes) if classes is not None else tuple(sorted({row.label for row in rows}))
    index = {name: i for i, name in enumerate(names)}
    if layout == "auto":
        layout = "nested" if rows and (root / rows[0].split).is_dir() else "flat"
    records = []
    for row in rows:
        if row.label not in index:
            raise AnnotationError(csv_file, row.line, "label",
                                  f"unknown class {row.label!r} (expected one of the {len(names)} given classes)")
        name = row.file_name(extension)
        path = root / row.split / row.label / name if layout == "nested" else root / name
        records.append(VideoRecord(str(path), index[row.label], key=path.relative_to(root).as_posix()))
    return VideoList(records, names, source=str(csv_file))


@dataclass(frozen=True)
class KineticsRow:
    """One line of a Kinetics CSV; ``label`` is None in an unlabelled (test) CSV."""

    line: int
    label: str | None
    youtube_id: str
    time_start: int
    time_end: int
    split: str

    def file_name(self, extension: str = ".mp4") -> str:
        return kinetics_file_name(self.youtube_id, self.time_start, self.time_end, extension)


def kinetics_rows(csv_file: str | os.PathLike, *, allow_unlabelled: bool = False) -> Iterator[KineticsRow]:
    """The rows of a Kinetics CSV (quoted labels with commas, spaces and parentheses read as the
    ``csv`` module reads them). ``allow_unlabelled``: a CSV without a ``label`` column (the
    challenge's test split) gives rows whose label is None instead of stopping."""
    csv_file = Path(csv_file)
    if not csv_file.is_file():
        raise AnnotationError(csv_file, None, "file", "Kinetics CSV not found")
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, None) or []]
        if not header:
            raise AnnotationError(csv_file, 1, "header", f"empty file (expected {','.join(KINETICS_COLUMNS)})")
        needed = [c for c in KINETICS_COLUMNS if c != "label" or not allow_unlabelled or "label" in header]
        missing = [c for c in needed if c not in header]
        if missing:
            raise AnnotationError(csv_file, 1, "header", f"missing column(s) {missing} "
                                  f"(expected {','.join(KINETICS_COLUMNS)})")
        col = {name: header.index(name) for name in needed}
        for number, row in enumerate(reader, start=2):
            if row and any(cell.strip() for cell in row):
                yield _kinetics_row(csv_file, number, header, row, col)


def _kinetics_row(csv_file: Path, number: int, header: list[str], row: list[str], col: dict[str, int]) -> KineticsRow:
    if len(row) < len(header):
        raise AnnotationError(csv_file, number, header[len(row)],
                              f"missing column: {len(row)} of {len(header)} ({','.join(header)})")
    values = {name: row[index].strip() for name, index in col.items()}
    times = {}
    for name in ("time_start", "time_end"):
        try:
            times[name] = int(float(values[name]))
        except ValueError:
            raise AnnotationError(csv_file, number, name, f"{values[name]!r} is not a number of seconds") from None
    for name, what in (("label", "class name"), ("youtube_id", "video id"), ("split", "split name")):
        if name in values and not values[name]:
            raise AnnotationError(csv_file, number, name, f"empty {what}")
    return KineticsRow(number, values.get("label"), values["youtube_id"], times["time_start"], times["time_end"],
                       values["split"])


# ---------------------------------------------------------------- Something-Something V2


def ssv2_class_name(template: str) -> str:
    """``"Putting [something] on [something]"`` -> ``"Putting something on something"`` (labels.json keys)."""
    return template.replace("[", "").replace("]", "")


def read_ssv2(labels_json: str | os.PathLike, split_json: str | os.PathLike,
              root: str | os.PathLike, extension: str = ".webm") -> VideoList:
    """Something-Something V2: ``labels.json`` (name -> index) and a split JSON list.

    Each entry needs ``id`` and ``template``; the video is ``<root>/<id>.webm``.
    """
    labels_json, split_json, root = Path(labels_json), Path(split_json), Path(root)
    labels = _load_json(labels_json)
    if not isinstance(labels, dict):
        raise AnnotationError(labels_json, None, "labels", "expected an object {class name: index}")
    by_index: dict[int, str] = {}
    for name, value in labels.items():
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(labels_json, None, f"labels[{name!r}]",
                                  f"{value!r} is not an integer index") from None
        if number in by_index:
            raise AnnotationError(labels_json, None, f"labels[{name!r}]",
                                  f"index {number} already used by {by_index[number]!r}")
        by_index[number] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(labels_json, None, "labels", "indices must be 0..N-1 without gaps")
    classes = tuple(by_index[i] for i in range(len(by_index)))
    index = {name: i for i, name in enumerate(classes)}
    entries = _load_json(split_json)
    if not isinstance(entries, list):
        raise AnnotationError(split_json, None, "entries", "expected a list of {id, template, ...}")
    records = []
    for number, entry in enumerate(entries):
        where = f"entry {number}"
        for key in ("id", "template"):
            if not isinstance(entry, dict) or key not in entry:
                raise AnnotationError(split_json, None, f"{where}.{key}", "missing (expected id and template)")
        name = ssv2_class_name(str(entry["template"]))
        if name not in index:
            raise AnnotationError(split_json, None, f"{where}.template",
                                  f"unknown class {name!r} (not a key of {labels_json.name})")
        records.append(VideoRecord(str(root / f"{entry['id']}{extension}"), index[name], key=f"{entry['id']}{extension}"))
    return VideoList(records, classes, source=str(split_json))


def _load_json(path: Path):
    if not path.is_file():
        raise AnnotationError(path, None, "file", "JSON file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(path, error.lineno, "json", error.msg) from None


def left_right_swap(classes: Sequence[str]) -> dict[int, int]:
    """Label map for horizontal flips: each class naming left/right -> the class with them swapped.

    Something-Something has pairs such as "Pushing something from left to right" /
    "... from right to left"; flipping a clip must swap its label. Classes without a
    partner are absent from the map (they keep their label).
    """
    index = {name: i for i, name in enumerate(classes)}
    swap: dict[int, int] = {}
    for name, i in index.items():
        lowered = name.lower()
        if "left" not in lowered and "right" not in lowered:
            continue
        partner = _swap_words(name)
        if partner != name and partner in index:
            swap[i] = index[partner]
    return swap


def _swap_words(text: str) -> str:
    marker = "\x00"
    out = text.replace("left", marker).replace("right", "left").replace(marker, "right")
    return out.replace("Left", marker).replace("Right", "Left").replace(marker, "Right")
