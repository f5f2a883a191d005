"""Per-video test predictions, as a file anyone can recompute a results table from.

A test pass ends in one score vector per video (its views' softmax averaged). Keeping all of
them, not only the accuracy, is what lets a sweep compare two rows video by video (a paired
test needs to know *which* videos each row got right) and lets a reader check any figure.
The file is a CSV with one line per video: its path, true and predicted class (index and
name), whether the prediction is right, and the score of every class.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "predictions.csv"
_SCORE = "score:"  # prefix of the per-class score columns


@dataclass
class VideoPredictions:
    """One test pass: ``scores[i]`` are the class scores of ``videos[i]``, whose class is ``labels[i]``."""

    videos: list[str]
    labels: np.ndarray  # (n,) int
    scores: np.ndarray  # (n, classes) float
    classes: list[str]

    def __len__(self) -> int:
        return len(self.videos)

    def top(self, k: int) -> np.ndarray:
        """The ``k`` best classes per video, best first: (n, k)."""
        k = min(k, self.scores.shape[1]) if len(self) else k
        return np.argsort(-self.scores, axis=1, kind="stable")[:, :k]

    def correct(self, k: int = 1) -> np.ndarray:
        """Per video: is the true class among the ``k`` best? (n,) bool."""
        if not len(self):
            return np.zeros(0, bool)
        return (self.top(k) == self.labels[:, None]).any(axis=1)

    def write_csv(self, path: str | Path) -> Path:
        predicted = self.top(1)[:, 0] if len(self) else np.zeros(0, int)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "label", "label_name", "predicted", "predicted_name", "correct"]
                            + [_SCORE + name for name in self.classes])
            for video, label, guess, scores in zip(self.videos, self.labels, predicted, self.scores):
                writer.writerow([video, int(label), self.classes[label], int(guess), self.classes[guess],
                                 int(label == guess)] + [f"{s:.6g}" for s in scores])
        return Path(path)

    @classmethod
    def read_csv(cls, path: str | Path) -> "VideoPredictions":
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            classes = [h[len(_SCORE):] for h in header if h.startswith(_SCORE)]
            first_score = header.index(_SCORE + classes[0]) if classes else len(header)
            videos, labels, scores = [], [], []
            for line in reader:
                videos.append(line[0])
                labels.append(int(line[1]))
                scores.append([float(v) for v in line[first_score:]])
        return cls(videos, np.asarray(labels, np.int64), np.asarray(scores, np.float64).reshape(len(videos), -1),
                   classes)
