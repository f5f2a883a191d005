"""Multi-view testing of a checkpoint, and top-5 predictions for single files.

The test protocol (K clips x 3 crops per video, softmax averaged over the views) runs
its decoding on Ray Data and its inference in this process; scores are averaged per
video, so one video counts once however many views it has.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ExperimentConfig
from ..data.annotations import VideoList, read_dataset_folder
from ..data.batches import to_model_input
from ..data.cache import VideoCache
from ..data.dataset import DecodePool
from ..data.decoding import BadVideo, decode_views
from ..data.sampling import ClipSpec
from ..errors import UsageError
from .checkpoints import load_trained
from .metrics import (
    LOSS,
    MEAN_CLASS_ACC,
    SAMPLES,
    TEST,
    TEST_TOP1,
    TEST_TOP5,
    ClassificationMeter,
    average_scores_by_video,
    family_top1,
    plot_confusion,
)
from .predictions import FILE_NAME as PREDICTIONS_FILE
from .predictions import VideoPredictions
from .scoring import TestWorkers, ViewScores, score_on_workers


@dataclass
class EvalReport:
    split: str
    classes: list[str]
    metrics: dict[str, float]  # test_top1, test_top5, test_mean_class_acc, test_videos, ...
    per_class: dict[str, float]
    confusion: np.ndarray
    views_per_video: int
    predictions: VideoPredictions  # per video: what a paired comparison of two models needs

    def table(self) -> str:
        m = self.metrics
        lines = [f"{self.split}: {int(m['test_videos'])} videos x {self.views_per_video} views  "
                 f"top-1 {m[TEST_TOP1]:.2f}  top-5 {m[TEST_TOP5]:.2f}  mean class {m[TEST + MEAN_CLASS_ACC]:.2f}"]
        lines += [f"  {name:32s} {acc:6.2f}" for name, acc in self.per_class.items()]
        return "\n".join(lines)


def evaluate_checkpoint(checkpoint: str | Path, data_root: str | Path, split: str = "test", *,
                        clips: int | None = None, crops: int | None = None, batch_size: int = 8,
                        pool: DecodePool = DecodePool(), cache: VideoCache | None = None,
                        workers: TestWorkers = TestWorkers()) -> EvalReport:
    """Top-1/top-5/mean class accuracy of a checkpoint on a split, views averaged per video.

    The views are scored by ``workers`` (tasks sized like training workers, see :mod:`.scoring`),
    each decoding its shard with its share of ``pool``, or cutting it from ``cache`` (the split's
    videos decoded once, as a sweep keeps them). This process only averages the scores.
    """
    _, _, classes, spec, videos = load_for_testing(checkpoint, data_root, split, clips, crops)
    views = score_on_workers(checkpoint, videos, spec, workers, batch_size=batch_size, pool=pool, cache=cache)
    videos_seen, scores, labels = per_video(views)
    meter = ClassificationMeter(len(classes))
    if len(videos_seen):
        meter.update(torch.from_numpy(scores), torch.from_numpy(labels))
    metrics = {k.replace(SAMPLES, "videos"): v for k, v in meter.compute(TEST).items() if k != TEST + LOSS}
    metrics["test_videos_unreadable"] = float(len(videos) - len(videos_seen))
    metrics.update(_benchmark_families(classes, labels.tolist(), scores.argmax(axis=1).tolist()))
    per_class = dict(zip(classes, (100.0 * meter.per_class_accuracy()).tolist()))
    predictions = VideoPredictions([videos.records[int(i)].path for i in videos_seen], labels, scores, list(classes))
    return EvalReport(split, classes, metrics, per_class, meter.confusion.numpy(), spec.views_per_video("test"),
                      predictions)


def load_for_testing(checkpoint: str | Path, data_root: str | Path, split: str, clips: int | None,
                     crops: int | None) -> tuple[torch.nn.Module, ExperimentConfig, list[str], ClipSpec, VideoList]:
    """A checkpoint's model, config and class names, its test clip spec (``clips`` x ``crops`` views when
    given) and the split's videos, checked to have the classes the model was trained for."""
    model, config, classes = load_trained(checkpoint)
    spec = config.data.clip
    spec = dataclasses.replace(spec, test_clips=clips or spec.test_clips, test_crops=crops or spec.test_crops)
    videos = read_dataset_folder(data_root, split)
    if list(videos.classes) != classes:
        raise UsageError(f"{data_root}: its classes differ from the checkpoint's ({len(videos.classes)} vs "
                         f"{len(classes)}); test on the dataset the model was trained for")
    return model, config, classes, spec, videos


def per_video(views: ViewScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax scores averaged over each video's views: (video ids, scores (videos, classes), labels)."""
    if not len(views.videos):
        return np.zeros(0, np.int64), np.zeros((0, 0)), np.zeros(0, np.int64)
    ids, scores = average_scores_by_video(views.videos, views.scores)
    _, label_of = average_scores_by_video(views.videos, views.labels[:, None])
    return ids, scores, label_of[:, 0].astype(np.int64)


def _benchmark_families(classes: list[str], labels: list[int], predictions: list[int]) -> dict[str, float]:
    """On the built-in benchmark, top-1 per class family (:func:`family_top1`): overall
    accuracy can hide a model at chance on the reversal pairs."""
    from ..data.synthetic import CLASSES, accuracy_by_group

    if classes != [c.name for c in CLASSES] or not labels:
        return {}
    groups = accuracy_by_group(labels, predictions)
    return {family_top1(key): 100.0 * value
            for key, value in groups.items() if key.startswith("family ")}


def write_report(report: EvalReport, folder: str | Path) -> list[Path]:
    """metrics.json, per_class.csv, predictions.csv (per video) and confusion.png in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(report.metrics, indent=2))
    with open(folder / "per_class.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "accuracy"])
        writer.writerows((name, f"{acc:.2f}") for name, acc in report.per_class.items())
    png = plot_confusion(report.confusion, report.classes, folder / "confusion.png",
                         f"{report.split}: top-1 {report.metrics[TEST_TOP1]:.1f}%")
    predictions = report.predictions.write_csv(folder / PREDICTIONS_FILE)
    return [folder / "metrics.json", folder / "per_class.csv", predictions, png]


def log_report(client, run_id: str, report: EvalReport) -> None:
    """Test metrics and the report files into an MLflow run."""
    import tempfile

    from ..tracking import log_metrics

    with tempfile.TemporaryDirectory() as folder:
        for path in write_report(report, folder):
            client.log_artifact(run_id, str(path), artifact_path="test")
    log_metrics(client, run_id, report.metrics, step=0)  # last: present only with every file


def predict_files(checkpoint: str | Path, paths: list[str], top: int = 5) -> list[dict]:
    """Top-``top`` classes per file on the centre clip; unreadable files get an ``error``."""
    model, config, classes = load_trained(checkpoint)
    results = []
    for path in paths:
        try:
            views = decode_views(str(path), 0, config.data.clip, "eval", 0)
        except BadVideo as bad:
            results.append({"path": str(path), "error": str(bad)})
            continue
        clips = to_model_input(np.stack([clip for clip, _ in views]))
        with torch.no_grad():
            scores = model(clips).softmax(dim=1).mean(dim=0)
        values, indices = scores.topk(min(top, len(classes)))
        results.append({"path": str(path), "top": [(classes[i], float(v)) for v, i in zip(values, indices)]})
    return results
