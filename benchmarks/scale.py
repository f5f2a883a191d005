"""A Kinetics-size list through the streaming training path: what grows with the list where it should not.

    python run.py bench scale [--json] [--large 240000] [--small 2400] [--classes 400] [--steps 4]

Two dataset folders with the same 400 classes, one of ``--large`` training videos and one of
``--small``, whose entries are symbolic links to eight small real H.264 files (so the lists are
Kinetics-size while decoding stays cheap), and the same 16 validation videos. Each runs in a
fresh process of its own (so peak memory is that list's alone), on a Ray started there:

- the driver reads the training list (``list_lines_per_s``) and plans the run as ``fit`` does:
  the data-health tallies, the input plan every worker receives, the steps per epoch
  (``planning_s``);
- one Ray actor with a training worker's CPU opens the run's decode stream as a training worker
  does (``WorkerInputs.open``: its validation clips first, then its share of the list, epoch 0
  permuted) and trains ``--steps`` batches of a small R23 on it: ``first_batch_s`` is from the
  actor's start to its first training batch; ``epoch_plan_s`` is the time to put one epoch's
  permutation of the list in the order the stream reads it;
- peak resident memory of the driver process and of the actor's process (``ru_maxrss``).

The report gives both runs and the large/small ratios the project's targets are set on:
``driver_rss_ratio``, ``worker_rss_ratio``, ``first_batch_ratio`` (each at most 1.3x) and the
large list's ``list_lines_per_s`` (at least 200,000). Not covered: Ray Train's controller and
MLflow, whose work does not depend on the list's length (one run, its params and per-epoch metrics).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCES = 8  # real files the links point to
VAL_VIDEOS = 16


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=int, default=240_000, help="training videos of the large list")
    parser.add_argument("--small", type=int, default=2_400, help="training videos of the small list")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--steps", type=int, default=4, help="training steps each run takes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a dataset folder: measure it in this process
    return parser.parse_args(argv)


def write_sources(folder: Path) -> list[Path]:
    from pipelines.data.video_io import numbered_frames, write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"source{i}.mp4" for i in range(SOURCES)]
    for i, path in enumerate(paths):
        write_video(path, numbered_frames(24 + i, 48, 64))
    return paths


def write_dataset(root: Path, videos: Path, count: int, classes: int) -> Path:
    """A dataset folder listing ``count`` of the links in ``videos`` (labels round-robin)."""
    from pipelines.data.annotations import write_classes

    root.mkdir(parents=True, exist_ok=True)
    write_classes(root / "classes.txt", [f"class {i:03d}" for i in range(classes)])
    relative = os.path.relpath(videos, root)
    (root / "train.txt").write_text("".join(f"{relative}/v{i:06d}.mp4 {i % classes}\n" for i in range(count)))
    held = "".join(f"{relative}/v{i:06d}.mp4 {i % classes}\n" for i in range(VAL_VIDEOS))
    (root / "val.txt").write_text(held)
    (root / "test.txt").write_text(held)
    return root


def link_videos(folder: Path, sources: list[Path], count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        os.symlink(sources[i % len(sources)], folder / f"v{i:06d}.mp4")
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


class StreamWorker:
    """A training worker's input side and a few steps, in a Ray actor of one CPU."""

    def run(self, plan, config, steps: int, world_steps: int) -> dict:
        import itertools

        import torch

        from pipelines.data.sources import ShareRows
        from pipelines.training.inputs import WorkerInputs
        from pipelines.training.step import build_model_for, cosine_with_warmup, make_optimizer, train_epoch

        start = time.perf_counter()
        torch.set_num_threads(1)
        rows = ShareRows(plan.train, [0], config.data.clip.seed, 0, 1, True)
        rows.share(0)
        epoch_plan_s = time.perf_counter() - start
        inputs = WorkerInputs(plan, config.data.clip, rank=0, world=1, batch_size=config.data.batch_size,
                              steps_per_epoch=world_steps, device=torch.device("cpu"))
        _, epochs = inputs.open(0, 1)
        batches = next(epochs)
        first = next(batches)
        first_batch_s = time.perf_counter() - start
        model = build_model_for(config, len(plan.train.classes))
        optimizer = make_optimizer(model, config.optim, config.data.batch_size)
        metrics = train_epoch(model, itertools.chain([first], itertools.islice(batches, steps - 1)), optimizer,
                              cosine_with_warmup(optimizer, steps, 1), torch.amp.GradScaler("cpu", enabled=False),
                              num_classes=len(plan.train.classes), device=torch.device("cpu"), dtype=None)
        return {"first_batch_s": first_batch_s, "epoch_plan_s": epoch_plan_s, "steps": steps,
                "clips": int(metrics["train_samples"]), "worker_rss_mb": peak_rss_mb()}


def measure_one(root: str, steps: int) -> dict:
    """One list, in this process: the driver's side here, the worker's in a Ray actor."""
    import ray

    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.dataset import DecodePool
    from pipelines.data.epochs import steps_per_epoch
    from pipelines.data.health import remote_tallies
    from pipelines.presets import preset
    from pipelines.training.inputs import InputPlan

    config = preset("smoke").with_overrides({"model.name": "r23_2d", "data.cache": "none"})
    start = time.perf_counter()
    train = read_dataset_folder(root, "train")
    read_s = time.perf_counter() - start
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    try:
        start = time.perf_counter()
        val = read_dataset_folder(root, "val")
        health = remote_tallies({"train": (len(train), train.source), "val": (len(val), val.source)})
        plan = InputPlan(train, val, health["train"], health["val"], pool=DecodePool(1.0, 1, 1, 8))
        world_steps = steps_per_epoch(len(train), config.data.batch_size, 1)
        planning_s = time.perf_counter() - start
        worker = ray.remote(num_cpus=1)(StreamWorker).remote()
        report = ray.get(worker.run.remote(plan, config, steps, world_steps))
    finally:
        ray.shutdown()
    return {"videos": len(train), "list_read_s": read_s, "list_lines_per_s": len(train) / read_s,
            "planning_s": planning_s, **report, "driver_rss_mb": peak_rss_mb()}


def run_one(root: Path, steps: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--one", str(root), "--steps", str(steps)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace, scratch: Path) -> dict:
    sources = write_sources(scratch / "sources")
    videos = link_videos(scratch / "videos", sources, max(args.large, args.small))
    runs = {size: run_one(write_dataset(scratch / f"list{size}", videos, size, args.classes), args.steps)
            for size in (args.small, args.large)}
    small, large = runs[args.small], runs[args.large]
    return {"videos_large": args.large, "videos_small": args.small, "classes": args.classes,
            "driver_rss_ratio": round(large["driver_rss_mb"] / small["driver_rss_mb"], 3),
            "worker_rss_ratio": round(large["worker_rss_mb"] / small["worker_rss_mb"], 3),
            "first_batch_ratio": round(large["first_batch_s"] / small["first_batch_s"], 3),
            "list_lines_per_s": round(large["list_lines_per_s"]),
            "small": small, "large": large}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.steps)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as scratch:
        report = measure(args, Path(scratch))
    if args.json:
        print(json.dumps(report))
    else:
        for key in ("small", "large"):
            r = report[key]
            print(f"{r['videos']:>7} videos: list {r['list_lines_per_s']:,.0f} lines/s, planning {r['planning_s']:.2f} s, "
                  f"first batch {r['first_batch_s']:.1f} s, epoch plan {r['epoch_plan_s'] * 1e3:.0f} ms, "
                  f"driver {r['driver_rss_mb']:.0f} MB, worker {r['worker_rss_mb']:.0f} MB")
        print(f"large/small: driver memory {report['driver_rss_ratio']}x, worker memory {report['worker_rss_ratio']}x, "
              f"first batch {report['first_batch_ratio']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
