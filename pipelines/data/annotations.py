"""Annotation readers: from the files users already have to one list of (path, label) records.

Every reader returns a :class:`VideoList` (records + class names) so the class-index map
travels with the data and can be saved with each checkpoint. A malformed line never yields
a half-read dataset: it raises :class:`AnnotationError` naming the file, the line and the
field, and saying what was expected. Missing *video files* are not an annotation error;
they are the decoder's business (skipped and counted, see ``pipelines.data.decoding``).

Formats here: the generic list (MMAction2 / PySlowFast: ``relative/path.mp4 label_index`` per
line) and the project's dataset folder (``classes.txt`` + ``train.txt`` / ``val.txt`` /
``test.txt`` in the generic format, paths relative to the folder). The public datasets'
own files (Kinetics CSV, Something-Something JSON) are read by ``pipelines.data.formats``.

Text files are read as editors and spreadsheets write them (:func:`read_lines`): a UTF-8 byte
order mark, CRLF or CR line ends and trailing spaces are accepted; a byte that is not UTF-8 stops
with its line and byte offset. A list without a video, and a label that is not a whole number
(``3.0`` included: a class index is never a float, and a float column is more likely the wrong
column than a rounded index), stop with file:line and what was expected.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UsageError
from .columns import VideoColumns

SPLITS = ("train", "val", "test")
CLASSES_FILE = "classes.txt"


class AnnotationError(UsageError):
    """A malformed annotation: ``file:line: field: problem (expected ...)``."""

    def __init__(self, file: str | os.PathLike, line: int | None, field: str, problem: str) -> None:
        self.file, self.line, self.field, self.problem = str(file), line, field, problem
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: {field}: {problem}")


@dataclass(frozen=True, slots=True)
class VideoRecord:
    """One video: where it is (``path``), its class index, and who it is (``key``).

    ``key`` is the video's identity within its dataset, the path as its list names it
    (relative to the dataset folder): it seeds the video's training clips, so the same
    dataset read from another folder, machine or clone trains on the same clips. It
    defaults to ``path`` for records made without a list.
    """

    path: str
    label: int
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.path)

    def __reduce__(self):  # slots and frozen: pickled through the constructor, on any Python 3.10+
        return VideoRecord, (self.path, self.label, self.key)


@dataclass(frozen=True)
class VideoList:
    """The records of one split and the class names they index (line number = index)."""

    records: tuple[VideoRecord, ...]
    classes: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.records]

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def class_map(self) -> dict[str, int]:
        """Class name -> index; what a checkpoint stores so predictions can be named later."""
        return {name: index for index, name in enumerate(self.classes)}

    def columns(self) -> VideoColumns:
        return VideoColumns.of([r.path for r in self.records], [r.key for r in self.records],
                               [r.label for r in self.records])

    def __reduce__(self):
        """Pickled as its columns: a Kinetics list is 240,000 records, which pickle would otherwise
        write and memoize one object at a time (over 100 MB at its peak) wherever a list is sent
        to a Ray worker."""
        return _video_list, (self.columns(), self.classes, self.source)


def _video_list(columns: VideoColumns, classes: tuple[str, ...], source: str) -> VideoList:
    return VideoList(tuple(map(VideoRecord, columns.paths.tolist(), columns.labels.tolist(), columns.keys.tolist())),
                     classes, source)


# ---------------------------------------------------------------- text


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file, numbered as an editor numbers them (``lines[0]`` is line 1).

    A byte order mark (Excel, Notepad) is dropped, CRLF and CR line ends are read as LF, so
    neither leaks into the first path or class name. A byte that is not UTF-8 raises
    :class:`AnnotationError` naming its line and byte offset, not a ``UnicodeDecodeError``.
    """
    data = Path(path).read_bytes()
    body = data[len(BOM):] if data.startswith(BOM) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, data, len(data) - len(body) + error.start) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


BOM = b"\xef\xbb\xbf"


def _not_utf8(path: str | os.PathLike, data: bytes, offset: int) -> AnnotationError:
    """Where the bad byte is: its line, its offset in the file (from 0, as hex dumps count) and
    its place in the line (from 1, as editors count)."""
    before = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    line, place = before.count(b"\n") + 1, len(before) - before.rfind(b"\n")
    return AnnotationError(path, line, "encoding", f"byte 0x{data[offset]:02x} at byte offset {offset} "
                           f"(byte {place} of the line) is not UTF-8 (expected UTF-8 text)")


# ---------------------------------------------------------------- class names


def read_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """``classes.txt``: one class name per line, line number (from 0) = class index."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(path, None, "file", "class list not found")
    names: list[str] = []
    seen: dict[str, int] = {}
    lines = read_lines(path)
    for number, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name:
            if any(r.strip() for r in lines[number:]):
                raise AnnotationError(path, number, "class name", "empty line inside the class list "
                                      "(line number = class index, so blank lines are ambiguous)")
            break
        if name in seen:
            raise AnnotationError(path, number, "class name",
                                  f"{name!r} already named on line {seen[name]}")
        seen[name] = number
        names.append(name)
    if not names:
        raise AnnotationError(path, None, "file", "no class names")
    return tuple(names)


def write_classes(path: str | os.PathLike, classes: Sequence[str]) -> None:
    """Write ``classes.txt`` (the inverse of :func:`read_classes`)."""
    bad = [c for c in classes if not c.strip() or "\n" in c]
    if bad:
        raise ValueError(f"class names must be non-empty single lines, got {bad[:3]}")
    Path(path).write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")


# ---------------------------------------------------------------- generic list


def read_generic_list(list_file: str | os.PathLike, root: str | os.PathLike | None = None,
                      num_classes: int | None = None) -> list[VideoRecord]:
    """``relative/path.mp4 label_index`` per line; paths are joined to ``root`` when relative.

    The label is the last whitespace-separated field, so paths may contain spaces. Blank
    lines and ``#`` comments are ignored. ``num_classes`` bounds the label index. A list with
    no video at all is an error: a split that cannot be used is better stopped here.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise AnnotationError(list_file, None, "file", "annotation list not found")
    root = Path(root) if root is not None else list_file.parent
    prefix = str(root).rstrip("/") + "/"  # what ``root / path`` gives a relative path
    records: list[VideoRecord] = []
    for number, raw in enumerate(read_lines(list_file), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, sep, label_text = line.rpartition(" ")
        if not sep:
            path, sep, label_text = line.rpartition("\t")
        path = path.strip()
        if not sep or not path:
            raise AnnotationError(list_file, number, "label", f"missing column in {line!r} "
                                  "(expected 'relative/path.mp4 label_index')")
        label = _class_index(label_text, list_file, number)
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise AnnotationError(list_file, number, "label", f"index {label} out of range (expected {bound})")
        key = _as_posix(path)
        records.append(VideoRecord(key if key.startswith("/") else prefix + key, label, key=key))
    if not records:
        raise AnnotationError(list_file, None, "file", "no videos (expected 'relative/path.mp4 label_index' lines)")
    return records


def _as_posix(path: str) -> str:
    """``Path(path).as_posix()``, without building a Path for the paths it would leave as they are:
    a Kinetics list has 240,000 lines, and two Paths a line read it at a third of the speed."""
    if "//" in path or "/./" in path or path.startswith("./") or path.endswith(("/", "/.")) or path == ".":
        return Path(path).as_posix()
    return path


def _class_index(text: str, file: Path, line: int) -> int:
    """The label as a class index. ``3.0`` is refused like ``2.5``, with the integer it probably meant."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(file, line, "label", f"{text!r} is not an integer class index") from None
    meant = f" (write {int(value)})" if value.is_integer() else ""
    raise AnnotationError(file, line, "label", f"{text!r} is a float, not an integer class index{meant}")


def write_generic_list(list_file: str | os.PathLike, records: Iterable[VideoRecord],
                       root: str | os.PathLike | None = None) -> None:
    """Write the generic list; paths are written relative to ``root`` when given."""
    lines = []
    for record in records:
        path = os.path.relpath(record.path, root) if root is not None else record.path
        lines.append(f"{Path(path).as_posix()} {record.label}\n")
    Path(list_file).write_text("".join(lines), encoding="utf-8")


# ---------------------------------------------------------------- dataset folder


def read_dataset_folder(root: str | os.PathLike, split: str) -> VideoList:
    """The project's own dataset folder (what ``run.py data synth`` writes, ``--data DIR`` reads)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, None, "folder", "dataset folder not found")
    classes = read_classes(root / CLASSES_FILE)
    records = read_generic_list(root / f"{split}.txt", root, num_classes=len(classes))
    return VideoList(records, classes, source=str(root / f"{split}.txt"))


def write_dataset_folder(root: str | os.PathLike, classes: Sequence[str],
                         splits: dict[str, Sequence[VideoRecord]]) -> None:
    """Write ``classes.txt`` and one list per split, paths relative to ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_classes(root / CLASSES_FILE, classes)
    for split, records in splits.items():
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        write_generic_list(root / f"{split}.txt", records, root)
