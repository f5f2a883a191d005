"""Does a trained model use the arrow of time? Its test clips scored forward and played backwards.

``smallbig.reversal`` says whether an architecture *can* tell a clip from its reversal; this
says what a trained checkpoint *does*: top-1 on the split's test views, top-1 on the same
views reversed along T, and how often a video's predicted class changes. The test protocol
is ``run.py eval``'s (K clips x crops, softmax averaged per video); each batch is scored
twice in one pass over the decoded views, the reversed copy of video ``i`` under id
``i + len(videos)``, so the views are decoded once.

What a reversed clip "is" depends on the data. On the built-in benchmark it is known: a
family-A clip reversed is its pair partner (``slide_left_to_right`` <-> ``slide_right_to_left``:
the benchmark renders one as the other played backwards) and a family-B clip keeps its class.
Reversed clips are scored against that class there, and against their own label elsewhere.
A model that is exactly invariant (2D, every SmallBig as released: a centred max pool and
1 x k x k convs, paper Eq. 2) flips no prediction, so on family A its two top-1s add up to
at most 100: it is right on a clip or on its reversal, never on both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.synthetic import CLASSES, REVERSED_OF, accuracy_by_group
from .checkpoints import find_checkpoint
from .scoring import TestWorkers, score_on_workers
from .testing import load_for_testing, per_video

SAME_LABEL = "each reversed clip against its own label"
BENCHMARK_LABELS = "family A reversed against its pair partner (what it shows), family B against its own label"


@dataclass
class ReversalReport:
    checkpoint: str
    model: str
    split: str
    videos: int
    views_per_video: int
    top1: float  # percent of videos, forward
    reversed_top1: float  # percent of videos, every view reversed, scored as ``reversed_labels`` says
    flip_rate: float  # percent of videos whose predicted class changes under reversal
    reversed_labels: str
    families: dict[str, dict[str, float]] = field(default_factory=dict)  # built-in benchmark only

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        lines = [f"{self.model} on {self.split}: {self.videos} videos x {self.views_per_video} views, "
                 f"forward and reversed in time ({self.checkpoint})",
                 f"  {'':10s} {'top-1':>7s} {'reversed top-1':>15s} {'flipped':>8s}",
                 _row("all", self.top1, self.reversed_top1, self.flip_rate)]
        lines += [_row(name, f["top1"], f["reversed_top1"], f["flip_rate"]) for name, f in self.families.items()]
        lines.append(f"reversed clips scored: {self.reversed_labels}")
        return "\n".join(lines)


def _row(name: str, top1: float, reversed_top1: float, flip_rate: float) -> str:
    return f"  {name:10s} {top1:7.2f} {reversed_top1:15.2f} {flip_rate:7.2f}%"


def reversal_report(checkpoint: str | Path, data_root: str | Path, split: str = "test", *,
                    clips: int | None = None, crops: int | None = None, batch_size: int = 8,
                    pool: DecodePool = DecodePool(), cache: VideoCache | None = None,
                    workers: TestWorkers = TestWorkers()) -> ReversalReport:
    """Forward and reversed top-1 and the flip rate of a checkpoint on a split (views scored as in
    :func:`~pipelines.training.testing.evaluate_checkpoint`, each also reversed in time)."""
    location = find_checkpoint(checkpoint)
    _, config, classes, spec, videos = load_for_testing(location, data_root, split, clips, crops)
    views = score_on_workers(location, videos, spec, workers, batch_size=batch_size, pool=pool, cache=cache,
                             reversed_too=True)
    labels, forward, backward = split_directions(*per_video(views), offset=len(videos))
    reversed_labels, how = reversed_classes(classes, labels)
    summary = compare(labels, forward, reversed_labels, backward)
    return ReversalReport(checkpoint=location, model=config.model.name, split=split, videos=len(labels),
                          views_per_video=spec.views_per_video("test"), reversed_labels=how,
                          families=benchmark_families(classes, labels, forward, reversed_labels, backward),
                          **summary)


def split_directions(ids: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                     offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, forward predictions, reversed predictions), one row per video seen both ways."""
    forward, backward = ids < offset, ids >= offset
    if not np.array_equal(ids[forward], ids[backward] - offset):
        raise RuntimeError("reversal: forward and reversed views cover different videos")
    return labels[forward], scores[forward].argmax(axis=1), scores[backward].argmax(axis=1)


def reversed_classes(classes: list[str], labels: np.ndarray) -> tuple[np.ndarray, str]:
    """The class each video shows when played backwards, and how that was decided."""
    if not is_benchmark(classes):
        return labels, SAME_LABEL
    partner = {a: b for b, a in REVERSED_OF.items()} | dict(REVERSED_OF)
    mapping = np.array([classes.index(partner.get(name, name)) for name in classes])
    return mapping[labels], BENCHMARK_LABELS


def is_benchmark(classes: list[str]) -> bool:
    return classes == [c.name for c in CLASSES]


def compare(labels: np.ndarray, forward: np.ndarray, reversed_labels: np.ndarray,
            backward: np.ndarray) -> dict[str, float]:
    """Top-1 both ways and the share of changed predictions, in percent (nan without videos)."""
    if not len(labels):
        return {"top1": float("nan"), "reversed_top1": float("nan"), "flip_rate": float("nan")}
    return {"top1": 100.0 * float(np.mean(forward == labels)),
            "reversed_top1": 100.0 * float(np.mean(backward == reversed_labels)),
            "flip_rate": 100.0 * float(np.mean(forward != backward))}


def benchmark_families(classes: list[str], labels: np.ndarray, forward: np.ndarray,
                       reversed_labels: np.ndarray, backward: np.ndarray) -> dict[str, dict[str, float]]:
    """On the built-in benchmark, :func:`compare` per class family (A: reversal pairs, B: order
    without direction), top-1 as ``run.py eval`` counts it (``accuracy_by_group``). A reversed
    family-A clip's class is in family A too, so both directions count the same videos."""
    if not is_benchmark(classes) or not len(labels):
        return {}
    forward_top1, reversed_top1 = accuracy_by_group(labels, forward), accuracy_by_group(reversed_labels, backward)
    family_of = np.array([f"family {c.family}" for c in CLASSES])[labels]
    return {key: {"top1": 100.0 * forward_top1[key], "reversed_top1": 100.0 * reversed_top1[key],
                  "flip_rate": 100.0 * float(np.mean(forward[family_of == key] != backward[family_of == key]))}
            for key in sorted(set(family_of))}
