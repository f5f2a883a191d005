"""``bench train``'s plain PyTorch contender: the Ray pipeline's work as a DataLoader script.

What a PySlowFast or MMAction2 user writes: a ``DataLoader`` with persistent workers over the
same clips (decoded once into memory when the Ray run caches, every epoch when it streams),
the same model, optimizer and step, in one process on the Ray worker's torch thread count. A
separate module so that what the script does can be read, and changed, apart from the Ray
run it is timed against (``benchmarks.training``).
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import torch

from pipelines.config import ExperimentConfig
from pipelines.data.annotations import VideoList
from pipelines.data.batches import ClipBatch, to_model_input
from pipelines.data.cache import decode_whole
from pipelines.data.decoding import BadVideo, decode_views, views_from_frames
from pipelines.data.epochs import steps_per_epoch, worker_share
from pipelines.training.step import build_model_for, cosine_with_warmup, make_optimizer, train_epoch


class EpochClips(torch.utils.data.Dataset):
    """Index ``(epoch, video)`` -> the clip (uint8) and label the Ray pipeline trains on for it:
    cut from the video's frames decoded once when ``frames`` holds them, else decoded now."""

    def __init__(self, videos: VideoList, spec, frames: list[np.ndarray | None] | None = None) -> None:
        self.videos, self.spec, self.frames = videos, spec, frames

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]):
        epoch, video = key
        record = self.videos.records[video]
        try:
            if self.frames is None:
                views = decode_views(record.path, record.label, self.spec, "train", epoch, key=record.key)
            elif self.frames[video] is None:  # found bad when it was decoded
                return None
            else:
                views = views_from_frames(self.frames[video], record.path, record.label, self.spec, "train", epoch,
                                          key=record.key)
        except BadVideo:
            return None
        clip, label = views[0]
        return torch.from_numpy(clip), label


class WholeVideos(torch.utils.data.Dataset):
    """Index -> every frame of that video (None if bad), decoded as the Ray pipeline's cache decodes it."""

    def __init__(self, videos: VideoList, spec) -> None:
        self.videos, self.spec = videos, spec

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, video: int) -> np.ndarray | None:
        return decode_whole(self.videos.records[video].path, self.spec.min_side, self.spec.max_aspect)[1]


def as_is(item):
    """A collate function that leaves a sample alone (frames stay numpy, None stays None)."""
    return item


def decode_once(videos: VideoList, spec, processes: int) -> list[np.ndarray | None]:
    """The script's in-memory set: every video decoded whole, once, on ``processes`` DataLoader
    workers (the Ray pipeline's cache decodes a video per free CPU)."""
    loader = torch.utils.data.DataLoader(WholeVideos(videos, spec), batch_size=None, num_workers=processes,
                                         collate_fn=as_is)
    return list(loader)


class EpochBatches(torch.utils.data.Sampler):
    """Full batches of ``(epoch, video)`` keys, epoch after epoch, in the Ray pipeline's per-epoch order."""

    def __init__(self, videos: int, epochs: int, batch_size: int, seed: int) -> None:
        self.videos, self.epochs, self.batch_size, self.seed = videos, epochs, batch_size, seed

    def __iter__(self):
        steps = self.videos // self.batch_size
        for epoch in range(self.epochs):
            order = worker_share(self.videos, epoch, self.seed, 0, 1)
            for step in range(steps):
                yield [(epoch, int(v)) for v in order[step * self.batch_size:(step + 1) * self.batch_size]]

    def __len__(self) -> int:
        return self.epochs * (self.videos // self.batch_size)


def collate_clips(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the readable clips of a batch (a bad video is left out, as the Ray pipeline skips it)."""
    items = [item for item in items if item is not None]
    return torch.stack([clip for clip, _ in items]), torch.tensor([label for _, label in items])


def script_loader(config: ExperimentConfig, videos: VideoList, workers: int) -> torch.utils.data.DataLoader:
    """The script's DataLoader over the clips Ray would serve: from frames decoded once when Ray
    caches (``data.cache`` other than ``none``), decoded every epoch when it streams."""
    spec, batch = config.data.clip, config.data.batch_size
    frames = None if config.data.cache == "none" else decode_once(videos, spec, os.cpu_count() or 1)
    return torch.utils.data.DataLoader(
        EpochClips(videos, spec, frames), batch_sampler=EpochBatches(len(videos), config.optim.epochs, batch, spec.seed),
        num_workers=workers, persistent_workers=workers > 0, collate_fn=collate_clips,
        prefetch_factor=4 if workers else None)


def plain_torch(config: ExperimentConfig, videos: VideoList, *, workers: int) -> dict:
    """What a user of PySlowFast or MMAction2 would run: load in DataLoader workers, train in the
    main process on the Ray worker's thread count (``run.threads``)."""
    torch.set_num_threads(config.run.threads)
    torch.manual_seed(config.run.seed)
    start = time.time()
    batch, epochs = config.data.batch_size, config.optim.epochs
    steps = steps_per_epoch(len(videos), batch, 1)
    batches = iter(script_loader(config, videos, workers))
    model = build_model_for(config, len(videos.classes)).to(memory_format=torch.channels_last_3d)
    optimizer = make_optimizer(model, config.optim, batch)
    scheduler = cosine_with_warmup(optimizer, steps * epochs, int(steps * config.optim.warmup_epochs))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    first, rates, clips = None, [], 0

    def progress(done: int, loss: float) -> None:
        nonlocal first
        first = first or time.time()

    for _ in range(epochs):
        epoch = (ClipBatch(to_model_input(x), labels, None, None) for x, labels in itertools.islice(batches, steps))
        metrics = train_epoch(model, epoch, optimizer, scheduler, scaler, num_classes=len(videos.classes),
                              device=torch.device("cpu"), dtype=None, memory_format=torch.channels_last_3d,
                              progress=progress)
        rates.append(metrics["train_clips_per_s"])
        clips += int(metrics["train_samples"])  # counted as trained, not computed from the plan
    return summary(clips, time.time() - start, first - start, rates,
                   {"dataloader_workers": workers, "threads": config.run.threads, "cache": config.data.cache})


def summary(clips: int, seconds: float, first_batch_s: float, rates: list[float], detail: dict) -> dict:
    """The row every contender reports, the Ray run too: clips trained (counted, not planned), the
    whole run's rate, the first batch and the steady rate after the first epoch."""
    return {"clips_per_s": round(clips / seconds, 2), "clips": clips, "seconds": round(seconds, 1),
            "first_batch_s": round(first_batch_s, 1),
            "steady_clips_per_s": round(float(np.mean(rates[1:] or rates)), 2), **detail}
