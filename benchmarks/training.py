"""End-to-end training clips/s: this project's Ray pipeline against plain PyTorch and the bare step.

    python run.py bench train [--json] [--only laptop streaming] [--epochs 4]

For each case, over whole runs of at least 4 epochs with start-up included (the steady rate
after the first epoch and the first-batch time beside it):

1. ``ray``: ``pipelines.training.driver.fit``, what ``run.py train`` runs;
2. ``torch``: the same work the way PySlowFast / MMAction2 users write it: a
   ``torch.utils.data.DataLoader(num_workers=..., persistent_workers=True)`` over the same
   decode and sampling code (``decode_views``), the same model, optimizer and step
   (``train_epoch``), in one process (one process needs no DDP);
3. ``ceiling`` (laptop only): the bare training step of the same model on in-memory tensors
   with every core: the limit no data pipeline can beat.

Cases: ``laptop`` (the laptop preset on the built-in benchmark; Ray caches the decoded clips)
and ``streaming`` (no cache: Kinetics-like 340x256 H.264 videos, 8x8 dense clips at 112 px,
the same model). Ray is started first, so every contender runs beside the same Ray processes.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import train_step
from pipelines.config import ExperimentConfig
from pipelines.data.annotations import VideoList
from pipelines.data.batches import ClipBatch, to_model_input
from pipelines.data.decoding import BadVideo, decode_views
from pipelines.data.epochs import steps_per_epoch, worker_share
from pipelines.presets import preset
from pipelines.training.step import build_model_for, cosine_with_warmup, make_optimizer, train_epoch

CASES = ("laptop", "streaming")


class EpochClips(torch.utils.data.Dataset):
    """Index ``(epoch, video)`` -> the clip ``decode_views`` cuts for it (uint8) and its label."""

    def __init__(self, videos: VideoList, spec) -> None:
        self.videos, self.spec = videos, spec

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]):
        epoch, video = key
        record = self.videos.records[video]
        try:
            clip, label = decode_views(record.path, record.label, self.spec, "train", epoch, key=record.key)[0]
        except BadVideo:
            return None
        return torch.from_numpy(clip), label


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


def plain_torch(config: ExperimentConfig, videos: VideoList, *, workers: int, threads: int) -> dict:
    """What a user of PySlowFast or MMAction2 would run: decode in DataLoader workers, train in the main process."""
    torch.set_num_threads(threads)
    torch.manual_seed(config.run.seed)
    start = time.time()
    spec, batch, epochs = config.data.clip, config.data.batch_size, config.optim.epochs
    steps = steps_per_epoch(len(videos), batch, 1)
    loader = torch.utils.data.DataLoader(
        EpochClips(videos, spec), batch_sampler=EpochBatches(len(videos), epochs, batch, spec.seed),
        num_workers=workers, persistent_workers=workers > 0, collate_fn=collate_clips,
        prefetch_factor=4 if workers else None)
    model = build_model_for(config, len(videos.classes)).to(memory_format=torch.channels_last_3d)
    optimizer = make_optimizer(model, config.optim, batch)
    scheduler = cosine_with_warmup(optimizer, steps * epochs, int(steps * config.optim.warmup_epochs))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    batches = iter(loader)
    first, rates = None, []

    def progress(clips: int, loss: float) -> None:
        nonlocal first
        first = first or time.time()

    for _ in range(epochs):
        epoch = (ClipBatch(to_model_input(clips), labels, None, None) for clips, labels in itertools.islice(batches, steps))
        metrics = train_epoch(model, epoch, optimizer, scheduler, scaler, num_classes=len(videos.classes),
                              device=torch.device("cpu"), dtype=None, memory_format=torch.channels_last_3d,
                              progress=progress)
        rates.append(metrics["train_clips_per_s"])
    return summary(steps * batch * epochs, time.time() - start, first - start, rates,
                   {"dataloader_workers": workers, "threads": threads})


def summary(clips: int, seconds: float, first_batch_s: float, rates: list[float], detail: dict) -> dict:
    return {"clips_per_s": round(clips / seconds, 2), "clips": clips, "seconds": round(seconds, 1),
            "first_batch_s": round(first_batch_s, 1),
            "steady_clips_per_s": round(float(np.mean(rates[1:] or rates)), 2), **detail}


def ray_fit(config: ExperimentConfig, storage: str, name: str) -> dict:
    """``fit`` as ``run.py train`` runs it (no test at the end), timed from the call to its return."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import tracking_uri
    from pipelines.training.driver import fit

    config = config.with_overrides({"run.storage": storage, "run.name": name})
    start = time.time()
    result = fit(config, run_test=False)
    seconds = time.time() - start
    client = MlflowClient(tracking_uri(storage))
    history = {key: [m.value for m in sorted(client.get_metric_history(result.run_id, key), key=lambda m: m.step)]
               for key in ("train_clips_per_s", "train_samples", "first_batch_time")}
    clips = int(sum(history["train_samples"]))
    return summary(clips, seconds, history["first_batch_time"][0] - start, history["train_clips_per_s"],
                   {"workers": config.run.workers, "cache": config.data.cache,
                    "decoders_started": result.metrics.get("train_decoders_started")})


def laptop_case(args, storage: str) -> dict:
    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.folders import resolve_data

    config = preset(args.preset).with_overrides({"run.workers": args.workers, "data.path": "synthetic",
                                                 "data.cache": "memory"})
    if args.epochs:
        config = config.with_overrides({"optim.epochs": args.epochs})
    root = resolve_data(config.data.path, storage, config.data.synthetic)
    videos = read_dataset_folder(root, "train")
    config = config.with_overrides({"data.path": str(root)})
    clip = config.data.clip
    torch_result = plain_torch(config, videos, workers=args.torch_workers, threads=args.torch_threads)
    # after the script, when Ray's own start-up has long settled, and past the first steps
    ceiling = train_step.measure(config.model.name, amp="none", steps=args.ceiling_steps,
                                 batch=config.data.batch_size, frames=clip.frames, size=clip.crop,
                                 classes=len(videos.classes), threads=os.cpu_count() or 1,
                                 options=config.model.options, warmup=min(5, args.ceiling_steps))
    ray_result = ray_fit(config, storage, "bench-laptop")
    return {"ray": ray_result["clips_per_s"], "torch": torch_result["clips_per_s"],
            "ceiling": round(ceiling["clips_per_s"], 2), "model": config.model.name,
            "options": config.model.options, "clip": [clip.frames, clip.crop, clip.crop],
            "batch": config.data.batch_size, "threads": os.cpu_count(),
            "details": {"ray": ray_result, "torch": torch_result, "ceiling": ceiling}}


def streaming_case(args, storage: str) -> dict:
    from benchmarks.videos import kinetics_like_videos
    from pipelines.data.annotations import VideoRecord, write_dataset_folder
    from pipelines.presets import clip_spec

    root = Path(storage) / "kinetics_like"
    videos = kinetics_like_videos(root / "videos", args.videos, 340, 256, 128)
    write_dataset_folder(root, videos.classes, {"train": videos.records, "val": videos.records[:4],
                                                "test": [VideoRecord(r.path, r.label) for r in videos.records[:2]]})
    config = preset("laptop").with_overrides({
        "optim.epochs": args.epochs or 4, "run.workers": args.workers, "data.path": str(root), "data.cache": "none"})
    config.data.clip = clip_spec("kinetics", crop=112, train_short=(128, 160), eval_short=128, test_short=128)
    torch_result = plain_torch(config, VideoList(videos.records, videos.classes), workers=args.torch_workers,
                               threads=args.torch_threads)
    ray_result = ray_fit(config, storage, "bench-streaming")
    clip = config.data.clip
    return {"ray": ray_result["clips_per_s"], "torch": torch_result["clips_per_s"], "model": config.model.name,
            "clip": [clip.frames, clip.crop, clip.crop], "batch": config.data.batch_size,
            "details": {"ray": ray_result, "torch": torch_result}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="run.py bench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the preset's; 4 in the streaming case)")
    parser.add_argument("--preset", default="laptop", help="the cached case's preset (smoke: a quick check)")
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers")
    parser.add_argument("--torch-workers", type=int, default=max(1, cpus - 1), help="DataLoader worker processes")
    parser.add_argument("--torch-threads", type=int, default=max(1, cpus - 1), help="torch threads of the trainer")
    parser.add_argument("--videos", type=int, default=96, help="Kinetics-like videos in the streaming case")
    parser.add_argument("--ceiling-steps", type=int, default=60)
    parser.add_argument("--storage", help="folder for runs and data (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import ray

    from pipelines.cluster import start_ray

    args = parse_args(argv)
    report = {}
    started_ray = not ray.is_initialized()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as scratch:
        storage = args.storage or scratch
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(storage).resolve() / 'mlflow.db'}")
        start_ray()  # the store's address reaches every Ray worker
        # what the runs and Ray print goes to stderr: stdout holds the report alone (--json pipes on)
        with contextlib.redirect_stdout(sys.stderr):
            try:
                for case in args.only:
                    report[case] = (laptop_case if case == "laptop" else streaming_case)(args, storage)
            finally:
                if started_ray:
                    ray.shutdown()
    for case, row in report.items():
        row["ratios"] = {"ray/torch": round(row["ray"] / row["torch"], 2)}
        if "ceiling" in row:
            row["ratios"]["ray/ceiling"] = round(row["ray"] / row["ceiling"], 2)
    if args.json:
        print(json.dumps(report))
        return 0
    for case, row in report.items():
        print(f"{case}: {row['model']} {'x'.join(map(str, row['clip']))}, batch {row['batch']}")
        for who in ("ray", "torch", "ceiling"):
            if who in row:
                detail = row["details"][who]
                extra = (f"  (first batch {detail['first_batch_s']} s, steady {detail['steady_clips_per_s']})"
                         if "first_batch_s" in detail else "")
                print(f"  {who:8s} {row[who]:7.1f} clips/s{extra}")
        print("  " + "   ".join(f"{k} {v:.2f}x" for k, v in row["ratios"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
