"""A video list as three columns (paths, keys, labels): what travels to Ray workers.

A list's records are an object each (:class:`~pipelines.data.annotations.VideoRecord`); pickle
writes, memoizes and makes them again one at a time, which on a Kinetics list of 240,000 is
seconds on the way to a run's first batch and a 100 MB peak in the process that sends it. As
columns the same list is three arrays, made in a fraction of a second, and pickles as a few
strings and the labels' bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VideoColumns:
    """A list's records as columns, for code that looks videos up by position, one at a time or
    with an index array (a decode actor turning a stream's row numbers into videos)."""

    paths: np.ndarray  # str objects
    keys: np.ndarray  # str objects
    labels: np.ndarray  # int64

    @classmethod
    def of(cls, paths: list[str], keys: list[str], labels: list[int]) -> "VideoColumns":
        return cls(_objects(paths), _objects(keys), np.asarray(labels, dtype=np.int64).reshape(-1))

    def __len__(self) -> int:
        return len(self.labels)

    def __reduce__(self):
        """The keys joined into one string, and the paths as the folder they are the keys under
        (a dataset folder's list: one string for all of them), or joined too."""
        paths, keys = self.paths.tolist(), self.keys.tolist()
        folder = _folder_of(paths, keys)
        return _video_columns, (_SEPARATOR.join(keys), folder, None if folder is not None else _SEPARATOR.join(paths),
                                self.labels)


_SEPARATOR = "\0"  # no path holds it


def _objects(values: list[str]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _folder_of(paths: list[str], keys: list[str]) -> str | None:
    """The prefix that makes every key its path, if there is one."""
    if not paths or not paths[0].endswith(keys[0]):
        return None
    folder = paths[0][:len(paths[0]) - len(keys[0])]
    return folder if all(path == folder + key for path, key in zip(paths, keys)) else None


def _video_columns(keys: str, folder: str | None, paths: str | None, labels: np.ndarray) -> VideoColumns:
    if not len(labels):
        return VideoColumns(_objects([]), _objects([]), labels)
    key_list = keys.split(_SEPARATOR)
    path_list = [folder + key for key in key_list] if folder is not None else paths.split(_SEPARATOR)
    return VideoColumns(_objects(path_list), _objects(key_list), labels)
