"""Clips per second from a folder of videos: one process, a torch DataLoader, Ray Data at 1 and 2 actors.

    python run.py bench data [--json] [--videos 32 --repeat 16 --rounds 2 --width 340 --height 256]

All loaders run the same work per clip (``pipelines.data.decoding.decode_views``: decord decode of
an 8x8 dense clip, random short-side scale, 224 crop, flip), so the ratios measure the
loaders, not the decoding:

- ``single_process``: a plain loop pinned to one CPU, the per-core limit whatever threads the
  decoder starts (a decord reader decodes in a thread of its own: unpinned, the loop keeps about
  1.2 cores busy). ``--only ... single_process_unpinned`` adds the same loop unpinned;
- ``dataloader``: ``torch.utils.data.DataLoader`` with 2 worker processes (what a user
  would pick instead of Ray);
- ``ray_data_1`` / ``ray_data_2``: ``pipelines.data.dataset.build_dataset`` on a pool of 1 / 2
  decode actors (1 CPU each, the training pipeline's videos per call), iterated from the driver.

Throughput is clips per second over a whole epoch, start-up included (worker processes for
the DataLoader, the actor pool for Ray Data, rebuilt every epoch), the same rule for every
loader; the first-batch latency and the steady rate after it are reported beside it. An epoch
is ``--videos`` x ``--repeat`` clips (512 by default); real epochs hold thousands of clips, so a
per-epoch start-up weighs less there than here. Loaders run in turn, ``--rounds`` times, and
each reports its median, so a machine whose speed drifts (a shared VM) slows all of them alike.

Ray is started first so that every loader runs beside the same idle Ray processes; ``ray.init``
and Ray Data's once-per-job set-up (the helper actors its first execution starts) are outside
the timing, as ``import torch`` is for the DataLoader. Ray starts its workers at niceness 15 by
default, which on a machine with any other load hands the nice-0 baselines an advantage that
has nothing to do with the loaders; the benchmark starts Ray with ``RAY_worker_niceness`` =
``--ray-niceness`` (default 0, the baselines' niceness) and records it. Without ``--data`` the
benchmark writes Kinetics-like H.264 videos (340x256, 25 fps, 128 frames, 2 s GOPs) to a
temporary folder first.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.videos import kinetics_like_videos
from pipelines.data.annotations import VideoList, read_dataset_folder
from pipelines.data.decoding import decode_views
from pipelines.data.sampling import ClipSpec

KEYS = ("single_process", "dataloader", "ray_data_1", "ray_data_2")  # the JSON keys
LOADERS = KEYS + ("single_process_unpinned",)
RATIOS = [("ray_data_2", "single_process"), ("ray_data_2", "dataloader"), ("ray_data_1", "single_process"),
          ("dataloader", "single_process"), ("single_process_unpinned", "single_process"),
          ("ray_data_2", "single_process_unpinned"), ("dataloader", "single_process_unpinned")]


class _Meter:
    """Clips served, time to the first batch and over the whole run (start-up included)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.first_clips = 0
        self.clips = 0

    def batch(self, clips: int) -> None:
        self.clips += clips
        if self.first is None:
            self.first, self.first_clips = time.perf_counter(), clips

    def result(self) -> dict:
        seconds = time.perf_counter() - self.start
        first = (self.first or self.start) - self.start
        after = seconds - first
        return {"clips": self.clips, "seconds": round(seconds, 2), "clips_per_s": round(self.clips / seconds, 2),
                "first_batch_s": round(first, 2),
                "steady_clips_per_s": round((self.clips - self.first_clips) / after, 2) if after > 0 else None}


@contextmanager
def one_cpu():
    """Run the body on one CPU (threads started inside inherit it); yields whether it could."""
    if not hasattr(os, "sched_setaffinity"):
        yield False
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield True
    finally:
        os.sched_setaffinity(0, before)


def bench_single(videos: VideoList, spec: ClipSpec, passes: int) -> dict:
    meter = _Meter()
    for epoch in range(passes):
        for record in videos.records:
            meter.batch(len(decode_views(record.path, record.label, spec, "train", epoch, key=record.key)))
    return meter.result()


def bench_single_core(videos: VideoList, spec: ClipSpec, passes: int) -> dict:
    with one_cpu() as pinned:
        result = bench_single(videos, spec, passes)
    return {**result, "pinned_to_one_cpu": pinned}


class _TorchClips:
    """A map-style torch Dataset running the same decode as the other loaders."""

    def __init__(self, videos: VideoList, spec: ClipSpec, epoch: int) -> None:
        self.records, self.spec, self.epoch = videos.records, spec, epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        clip, label = decode_views(record.path, record.label, self.spec, "train", self.epoch, key=record.key)[0]
        return clip, label


def bench_dataloader(videos: VideoList, spec: ClipSpec, passes: int, batch_size: int, workers: int = 2) -> dict:
    from torch.utils.data import DataLoader

    meter = _Meter()
    for epoch in range(passes):
        loader = DataLoader(_TorchClips(videos, spec, epoch), batch_size=batch_size, num_workers=workers)
        for clips, _ in loader:
            meter.batch(len(clips))
    return meter.result()


def bench_ray(videos: VideoList, spec: ClipSpec, passes: int, batch_size: int, actors: int,
              videos_per_call: int) -> dict:
    from pipelines.data.dataset import DecodePool, build_dataset

    pool = DecodePool(num_cpus=1, min_actors=actors, max_actors=actors, batch_size=videos_per_call)
    meter = _Meter()
    for epoch in range(passes):
        clips = build_dataset(videos, spec, "train", pool=pool, epoch=epoch, shuffle=False)
        for batch in clips.dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
            meter.batch(len(batch["clip"]))
    return meter.result()


def parse_args(argv: list[str]) -> argparse.Namespace:
    from pipelines.data.dataset import DecodePool

    parser = argparse.ArgumentParser(prog="run.py bench data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a dataset folder (classes.txt + train.txt); default: generated videos")
    parser.add_argument("--videos", type=int, default=32, help="generated videos (or the first N of --data)")
    parser.add_argument("--repeat", type=int, default=16, help="times each video is listed in an epoch")
    parser.add_argument("--passes", type=int, default=1, help="epochs per loader in one measurement")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each loader, taken in turn")
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--video-frames", type=int, default=128)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--videos-per-call", type=int, default=DecodePool().batch_size,
                        help="videos per decode call (block) in Ray Data (default: the training pipeline's)")
    parser.add_argument("--only", nargs="*", choices=LOADERS, default=list(KEYS),
                        help="loaders to run (default: the four of the JSON keys)")
    parser.add_argument("--ray-niceness", type=int, default=0,
                        help="niceness of Ray's worker processes (Ray's own default is 15)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if min(args.videos, args.repeat, args.passes, args.rounds, args.videos_per_call) < 1:
        parser.error("--videos, --repeat, --passes, --rounds and --videos-per-call must be >= 1")
    return args


def measure(key: str, videos: VideoList, spec: ClipSpec, args: argparse.Namespace) -> dict:
    """One epoch (x ``--passes``) of the loader ``key``."""
    if key == "single_process":
        return bench_single_core(videos, spec, args.passes)
    if key == "single_process_unpinned":
        return bench_single(videos, spec, args.passes)
    if key == "dataloader":
        return bench_dataloader(videos, spec, args.passes, args.batch_size)
    return bench_ray(videos, spec, args.passes, args.batch_size, actors=int(key[-1]),
                     videos_per_call=args.videos_per_call)


def summarise(runs: list[dict]) -> dict:
    """One loader's median clips/s, every round's clips/s, and the details of the middle round
    (the slower of the two middle ones for an even count)."""
    ranked = sorted(runs, key=lambda r: r["clips_per_s"])
    middle = {**ranked[(len(ranked) - 1) // 2]}
    middle["clips_per_s"] = round(statistics.median(r["clips_per_s"] for r in runs), 2)
    middle["rounds"] = [r["clips_per_s"] for r in runs]
    return middle


def start_ray(niceness: int) -> bool:
    """Ray for the Ray Data loaders (unless already running), its once-per-job set-up done; True if started here."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        os.environ["RAY_worker_niceness"] = str(niceness)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ray.data.range(1).materialize()  # Ray Data's first execution starts its helper actors: once per job
    return started


def load_videos(args: argparse.Namespace, scratch: str) -> VideoList:
    """An epoch's list: ``--videos`` of ``--data`` (or generated into ``scratch``), each ``--repeat`` times."""
    if args.data:
        full = read_dataset_folder(args.data, "train")
        videos = VideoList(full.records[: args.videos], full.classes, full.source)
    else:
        videos = kinetics_like_videos(Path(scratch), args.videos, args.width, args.height, args.video_frames)
    return VideoList(videos.records * args.repeat, videos.classes, videos.source)


def run_rounds(loaders: list[str], videos: VideoList, spec: ClipSpec, args: argparse.Namespace) -> dict[str, list]:
    """Every loader measured once per round, in turn, so a machine whose speed drifts slows them alike."""
    runs: dict[str, list[dict]] = {key: [] for key in loaders}
    for round_number in range(args.rounds):
        for key in loaders:
            runs[key].append(measure(key, videos, spec, args))
            if not args.json:
                r = runs[key][-1]
                print(f"round {round_number + 1}/{args.rounds}  {key:24s} {r['clips_per_s']:6.1f} clips/s", flush=True)
    return runs


def build_report(runs: dict[str, list], clips_per_epoch: int, load_before, args: argparse.Namespace) -> dict:
    """The JSON report: each loader's median clips/s, the ratios between them, details and set-up."""
    results = {key: summarise(r) for key, r in runs.items()}
    report = {key: results[key]["clips_per_s"] for key in runs}
    ratios = {f"{num}/{den}": round(report[num] / report[den], 2)
              for num, den in RATIOS if num in report and den in report and report[den]}
    return {**report, "ratios": ratios, "details": results, "setup": {
        "clips_per_epoch": clips_per_epoch, "passes": args.passes, "rounds": args.rounds,
        "clip": f"{args.frames}x{args.stride} dense, {args.crop} crop", "videos_per_call": args.videos_per_call,
        "source": args.data or f"generated {args.width}x{args.height}, {args.video_frames} frames",
        "cpus": os.cpu_count(), "ray_worker_niceness": args.ray_niceness,
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()]}}


def print_report(report: dict, loaders: list[str]) -> None:
    setup = report["setup"]
    print(f"\nmedian of {setup['rounds']} round(s), {setup['clips_per_epoch']} clips per epoch:")
    for key in loaders:
        r = report["details"][key]
        print(f"{key:24s} {r['clips_per_s']:6.1f} clips/s  (first batch after {r['first_batch_s']:.1f} s, "
              f"then {r['steady_clips_per_s']} clips/s)")
    for name, value in report["ratios"].items():
        print(f"{name:40s} {value:.2f}x")
    print(f"machine: {setup['cpus']} CPUs, load average {setup['loadavg_before'][0]} before, "
          f"{setup['loadavg_after'][0]} after")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spec = ClipSpec(frames=args.frames, stride=args.stride, crop=args.crop,
                    train_short=(args.crop, max(args.crop, round(args.crop * 320 / 224))))
    loaders = [key for key in LOADERS if key in args.only]
    started_ray = False
    try:
        if any(key.startswith("ray_data") for key in loaders):
            started_ray = start_ray(args.ray_niceness)
        with tempfile.TemporaryDirectory(prefix="bench_data_") as scratch:
            videos = load_videos(args, scratch)
            load_before = os.getloadavg()
            runs = run_rounds(loaders, videos, spec, args)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    report = build_report(runs, len(videos), load_before, args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report, loaders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
