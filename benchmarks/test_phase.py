"""The multi-view test phase: scored on workers sized like the training workers vs in the driver.

    python run.py bench test [--json] [--preset laptop] [--workers 2] [--rounds 1]

Both contenders score the same views of the same test list with the same checkpoint (the
preset's model at its initial weights: the cost of scoring does not depend on the weights) and
read clips from the same decoded-clip cache, filled before the clock starts:

- ``driver``: the checkpoint loaded and every view scored in this process, one shard of one
  (how a run was tested before the test moved to the workers);
- ``workers``: ``pipelines.training.scoring.score_on_workers``, one Ray task per worker
  (``--workers``, one CPU each), each loading the checkpoint and scoring its shard.

Each side is timed from the checkpoint on disk to per-video scores in this process, task
start-up included, ``--rounds`` times in turn (medians reported). The report also gives the
largest difference between the two sides' per-video scores and whether every predicted class
agrees: sharding must change who scores a view, not its score.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py bench test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="laptop", help="the preset whose model, clips and test list are scored")
    parser.add_argument("--workers", type=int, default=2, help="scoring tasks, one CPU each")
    parser.add_argument("--rounds", type=int, default=1, help="times each contender runs, in turn")
    parser.add_argument("--storage", default="runs", help="where the built-in benchmark is (written if missing)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def cached_test_list(config, storage: str):
    """The preset's test list and its videos decoded into the object store (waited for)."""
    import ray

    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.cache import cache_videos
    from pipelines.data.folders import resolve_data

    root = resolve_data(config.data.path, os.path.abspath(storage), config.data.synthetic)
    videos = read_dataset_folder(root, "test")
    cache = cache_videos(videos, min_side=config.data.clip.min_side, max_aspect=config.data.clip.max_aspect)
    ray.get(cache.refs)
    return root, videos, cache


def in_driver(checkpoint: str, videos, spec, batch_size: int, threads: int, cache):
    from pipelines.data.dataset import DecodePool
    from pipelines.training.checkpoints import load_trained
    from pipelines.training.scoring import score_views

    torch.set_num_threads(threads)
    model, _, _ = load_trained(checkpoint)
    return score_views(model, videos, spec, rank=0, world=1, batch_size=batch_size, pool=DecodePool(), cache=cache)


def on_workers(checkpoint: str, videos, spec, batch_size: int, threads: int, cache, workers: int):
    from pipelines.data.dataset import DecodePool
    from pipelines.training.scoring import TestWorkers, score_on_workers

    return score_on_workers(checkpoint, videos, spec, TestWorkers(workers, 1.0, threads=threads),
                            batch_size=batch_size, pool=DecodePool(), cache=cache)


def timed(score) -> tuple[float, object]:
    start = time.perf_counter()
    views = score()
    return time.perf_counter() - start, views


def compare(driver_views, worker_views) -> dict:
    from pipelines.training.testing import per_video

    ids_a, scores_a, _ = per_video(driver_views)
    ids_b, scores_b, _ = per_video(worker_views)
    same_videos = np.array_equal(ids_a, ids_b)
    return {"same_videos": bool(same_videos),
            "max_abs_score_difference": float(np.abs(scores_a - scores_b).max()) if same_videos else None,
            "same_predictions": bool(same_videos and np.array_equal(scores_a.argmax(1), scores_b.argmax(1)))}


def measure(args: argparse.Namespace, scratch: str) -> dict:
    from pipelines.presets import preset
    from pipelines.training.checkpoints import save_initial_checkpoint

    config = preset(args.preset)
    root, videos, cache = cached_test_list(config, args.storage)
    checkpoint = str(save_initial_checkpoint(os.path.join(scratch, "checkpoint"), config, list(videos.classes)).parent)
    spec, batch, threads = config.data.clip, config.data.batch_size, config.run.threads
    seconds = {"driver": [], "workers": []}
    for _ in range(args.rounds):
        took, driver_views = timed(lambda: in_driver(checkpoint, videos, spec, batch, threads, cache))
        seconds["driver"].append(took)
        took, worker_views = timed(lambda: on_workers(checkpoint, videos, spec, batch, threads, cache, args.workers))
        seconds["workers"].append(took)
    driver_s, workers_s = (statistics.median(seconds[k]) for k in ("driver", "workers"))
    return {"preset": args.preset, "model": config.model.name, "videos": len(videos),
            "views": int(len(driver_views.videos)), "views_per_video": spec.views_per_video("test"),
            "workers": args.workers, "threads_per_worker": threads, "driver_seconds": round(driver_s, 2),
            "workers_seconds": round(workers_s, 2), "speedup": round(driver_s / workers_s, 2),
            "rounds": seconds, **compare(driver_views, worker_views)}


def main(argv: list[str] | None = None) -> int:
    import ray

    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_test_") as scratch:
            report = measure(args, scratch)
    finally:
        if started:
            ray.shutdown()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['model']} on {report['videos']} test videos x {report['views_per_video']} views: "
              f"driver {report['driver_seconds']:.1f} s, {report['workers']} workers {report['workers_seconds']:.1f} s "
              f"({report['speedup']:.2f}x); largest score difference {report['max_abs_score_difference']:.2g}, "
              f"same predictions: {report['same_predictions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
