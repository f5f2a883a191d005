"""End-to-end training clips/s: this project's Ray pipeline against plain PyTorch and the bare step.

    python run.py bench train [--json] [--only laptop streaming] [--epochs 4] [--threads N]

For each case, over whole runs of at least 4 epochs with start-up included (the steady rate
after the first epoch and the first-batch time beside it):

1. ``ray``: ``pipelines.training.driver.fit``, what ``run.py train`` runs;
2. ``torch``: the same work the way PySlowFast / MMAction2 users write it: a
   ``torch.utils.data.DataLoader(num_workers=..., persistent_workers=True)`` over the same
   clips, the same model, optimizer and step (``train_epoch``), in one process (one process
   needs no DDP). Like for like: it trains on the same torch thread count as the Ray worker
   (``run.threads``, ``--threads``), and where Ray caches (``data.cache memory``) the script
   decodes each video once into memory (``decode_whole``, the cache's own decode) and cuts each
   epoch's clip from those frames (``views_from_frames``); where Ray streams, it decodes every
   epoch (``decode_views``). ``ray/torch`` is the headline;
3. ``ceiling`` (laptop only): the bare training step of the same model on in-memory tensors
   with every core: the limit no data pipeline can beat;
4. ``torch_decoding`` (laptop, only with ``--decoding-script``): the earlier, unequal script,
   decoding every epoch while Ray decodes once; kept to compare with figures measured that way.

Cases: ``laptop`` (the laptop preset on the built-in benchmark; both cache the decoded clips)
and ``streaming`` (no cache: Kinetics-like 340x256 H.264 videos, 8x8 dense clips at 112 px,
the same model). Ray is started first, so every contender runs beside the same Ray processes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import train_step
from benchmarks.torch_script import plain_torch, summary
from pipelines.config import ExperimentConfig
from pipelines.data.annotations import VideoList
from pipelines.presets import preset

CASES = ("laptop", "streaming")


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
                   {"workers": config.run.workers, "threads": config.run.threads, "cache": config.data.cache,
                    "decoders_started": result.metrics.get("train_decoders_started")})


def bench_config(config: ExperimentConfig, args, overrides: dict) -> ExperimentConfig:
    """The case's config with the command's choices, which both contenders then read."""
    chosen = {"run.workers": args.workers, **overrides}
    if args.threads:
        chosen["run.threads"] = args.threads
    return config.with_overrides(chosen)


def laptop_case(args, storage: str) -> dict:
    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.folders import resolve_data

    config = bench_config(preset(args.preset), args, {"data.path": "synthetic", "data.cache": "memory",
                                                      **({"optim.epochs": args.epochs} if args.epochs else {})})
    root = resolve_data(config.data.path, storage, config.data.synthetic)
    videos = read_dataset_folder(root, "train")
    config = config.with_overrides({"data.path": str(root)})
    clip, details = config.data.clip, {}
    details["torch"] = plain_torch(config, videos, workers=args.torch_workers)
    if args.decoding_script:  # the earlier, unequal contender: decodes every epoch, Ray once
        details["torch_decoding"] = plain_torch(config.with_overrides({"data.cache": "none"}), videos,
                                                workers=args.torch_workers)
    # after the script, when Ray's own start-up has long settled, and past the first steps
    details["ceiling"] = train_step.measure(
        config.model.name, amp="none", steps=args.ceiling_steps, batch=config.data.batch_size, frames=clip.frames,
        size=clip.crop, classes=len(videos.classes), threads=os.cpu_count() or 1, options=config.model.options,
        warmup=min(5, args.ceiling_steps))
    details["ray"] = ray_fit(config, storage, "bench-laptop")
    return {**{who: round(detail["clips_per_s"], 2) for who, detail in details.items()},
            "model": config.model.name, "options": config.model.options, "clip": [clip.frames, clip.crop, clip.crop],
            "batch": config.data.batch_size, "threads": config.run.threads, "ceiling_threads": os.cpu_count(),
            "details": details}


def streaming_case(args, storage: str) -> dict:
    from benchmarks.videos import kinetics_like_videos
    from pipelines.data.annotations import VideoRecord, write_dataset_folder
    from pipelines.presets import clip_spec

    root = Path(storage) / "kinetics_like"
    videos = kinetics_like_videos(root / "videos", args.videos, 340, 256, 128)
    write_dataset_folder(root, videos.classes, {"train": videos.records, "val": videos.records[:4],
                                                "test": [VideoRecord(r.path, r.label) for r in videos.records[:2]]})
    config = bench_config(preset("laptop"), args, {"optim.epochs": args.epochs or 4, "data.path": str(root),
                                                   "data.cache": "none"})
    config.data.clip = clip_spec("kinetics", crop=112, train_short=(128, 160), eval_short=128, test_short=128)
    torch_result = plain_torch(config, VideoList(videos.records, videos.classes), workers=args.torch_workers)
    ray_result = ray_fit(config, storage, "bench-streaming")
    clip = config.data.clip
    return {"ray": ray_result["clips_per_s"], "torch": torch_result["clips_per_s"], "model": config.model.name,
            "clip": [clip.frames, clip.crop, clip.crop], "batch": config.data.batch_size,
            "threads": config.run.threads, "details": {"ray": ray_result, "torch": torch_result}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="run.py bench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the preset's; 4 in the streaming case)")
    parser.add_argument("--preset", default="laptop", help="the cached case's preset (smoke: a quick check)")
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers")
    parser.add_argument("--threads", type=int,
                        help="torch threads of the Ray worker and of the script alike (default: the preset's run.threads)")
    parser.add_argument("--torch-workers", type=int, default=max(1, cpus - 1), help="DataLoader worker processes")
    parser.add_argument("--decoding-script", action="store_true",
                        help="laptop: also time the earlier, unequal script that decodes every epoch")
    parser.add_argument("--videos", type=int, default=96, help="Kinetics-like videos in the streaming case")
    parser.add_argument("--ceiling-steps", type=int, default=60)
    parser.add_argument("--storage", help="folder for runs and data (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def with_ratios(row: dict) -> dict:
    """``ray/torch`` (the like-for-like headline) and Ray against every other contender measured."""
    row["ratios"] = {f"ray/{who}": round(row["ray"] / row[who], 2)
                     for who in ("torch", "ceiling", "torch_decoding") if who in row}
    return row


def print_report(report: dict) -> None:
    for case, row in report.items():
        print(f"{case}: {row['model']} {'x'.join(map(str, row['clip']))}, batch {row['batch']}, "
              f"{row['threads']} training thread(s)")
        for who in [w for w in ("ray", "torch", "torch_decoding", "ceiling") if w in row]:
            detail = row["details"][who]
            extra = (f"  (first batch {detail['first_batch_s']} s, steady {detail['steady_clips_per_s']})"
                     if "first_batch_s" in detail else "")
            print(f"  {who:14s} {row[who]:7.1f} clips/s{extra}")
        print("  " + "   ".join(f"{k} {v:.2f}x" for k, v in row["ratios"].items()))


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
                    report[case] = with_ratios((laptop_case if case == "laptop" else streaming_case)(args, storage))
            finally:
                if started_ray:
                    ray.shutdown()
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
