"""Classification metrics that add up across batches and workers: top-k, mean class accuracy, confusion."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

# Every metric a run logs is named here once; the sweep's tables and the resume checks read these names.
TRAIN, VAL, TEST = "train_", "val_", "test_"  # a split's prefix
LOSS, TOP1, TOP5, MEAN_CLASS_ACC, SAMPLES = "loss", "top1", "top5", "mean_class_acc", "samples"
VAL_TOP1, TEST_TOP1, TEST_TOP5 = VAL + TOP1, TEST + TOP1, TEST + TOP5
TRAIN_CLIPS_PER_S = TRAIN + "clips_per_s"  # training throughput: clips over the epoch's wall time
TRAIN_STEP_S = TRAIN + "step_s"  # seconds in forward, backward and update only
LR = "lr"


def family_top1(family: str) -> str:
    """Test top-1 over one class family of the built-in benchmark (``family A`` -> ``test_top1_family_A``)."""
    return f"{TEST_TOP1}_{family.replace(' ', '_')}"


class ClassificationMeter:
    """Sums of a pass: loss, top-1/top-5 hits and the confusion matrix (rows = truth)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits, count

    @property
    def count(self) -> int:
        """Samples seen so far (summed over workers after :meth:`all_reduce`)."""
        return int(self.sums[3].item())

    def update(self, scores: torch.Tensor, labels: torch.Tensor, loss: float | None = None) -> None:
        scores, labels = scores.detach().float().cpu(), labels.detach().cpu()
        k = min(5, self.num_classes)
        topk = scores.topk(k, dim=1).indices
        hits = topk.eq(labels[:, None])
        n = len(labels)
        self.sums += torch.tensor([(loss or 0.0) * n, hits[:, 0].sum().item(), hits.any(dim=1).sum().item(), n],
                                  dtype=torch.float64)
        index = labels * self.num_classes + topk[:, 0]
        self.confusion += torch.bincount(index, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes).double()

    def all_reduce(self) -> "ClassificationMeter":
        """Sum over the workers of a torch.distributed group (no-op when there is none)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for tensor in (self.sums, self.confusion):
                torch.distributed.all_reduce(tensor)
        return self

    def compute(self, prefix: str = "") -> dict[str, float]:
        loss, top1, top5, count = self.sums.tolist()
        count = max(count, 1.0)
        per_class = self.per_class_accuracy()
        seen = self.confusion.sum(dim=1) > 0
        return {
            prefix + LOSS: loss / count,
            prefix + TOP1: 100.0 * top1 / count,
            prefix + TOP5: 100.0 * top5 / count,
            prefix + MEAN_CLASS_ACC: 100.0 * float(per_class[seen].mean()) if seen.any() else 0.0,
            prefix + SAMPLES: float(self.sums[3]),
        }

    def per_class_accuracy(self) -> torch.Tensor:
        totals = self.confusion.sum(dim=1)
        return torch.where(totals > 0, self.confusion.diagonal() / totals.clamp(min=1), torch.zeros_like(totals))


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    n = len(class_names)
    side = max(4.0, 0.35 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (row-normalised)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
def average_scores_by_video(videos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean score over each video's views (the test protocol): returns (video ids, scores)."""
    videos = np.asarray(videos)
    scores = np.asarray(scores, dtype=np.float64)
    ids, inverse = np.unique(videos, return_inverse=True)
    sums = np.zeros((len(ids),) + scores.shape[1:])
    np.add.at(sums, inverse, scores)
    counts = np.bincount(inverse, minlength=len(ids)).reshape((-1,) + (1,) * (scores.ndim - 1))
    return ids, sums / counts
