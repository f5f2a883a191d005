"""Training clips of the ``kinetics`` preset per decode core: videos as downloaded against their re-encoded copies.

    python run.py bench decode [--json] [--videos 6] [--passes 10] [--short-side 320] [--keyframe-interval 8]
                               [--rounds 3] [--source-size 340x256]

The originals are what a Kinetics download gives: 10 s at 30 fps, 340x256 H.264 with a keyframe
every 250 frames (made on first use, moving texture that costs what footage costs to decode);
``--source-size 640x360`` gives the full-resolution copies the download scripts leave.
The copies are what ``run.py data import ... --reencode`` writes, made by the same function
(``importing.reencoding.reencode_video``). Both are read on one pinned core by the decode the
training stream runs (``decoding.decode_views``: the preset's dense 8x8 clip, short side
256-320, 224 crop, flip), with the same key and seed, so the same frames and crops are asked of
both, in turn for ``--rounds`` rounds. The report gives the median clips per core-second of each,
the speed-up, what the copies cost on disk, and how far the copies' frames are from the
originals' (mean absolute difference in 0-255 levels over every pixel of each video's centre
evaluation clip): the codec's loss, nothing more.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.data_loading import one_cpu
from benchmarks.videos import kinetics_like_videos
from pipelines.data.decoding import decode_views
from pipelines.data.importing.reencoding import Reencoding, reencode_video
from pipelines.presets import clip_spec


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py bench decode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=6, help="videos of 10 s (default: %(default)s)")
    parser.add_argument("--passes", type=int, default=10, help="epochs of clips read from each (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each side in turn; medians (default: %(default)s)")
    parser.add_argument("--source-size", default="340x256", help="the originals' WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--short-side", type=int, default=Reencoding().short_side)
    parser.add_argument("--keyframe-interval", type=int, default=Reencoding().keyframe_interval)
    parser.add_argument("--scratch", help="where the videos are made (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def clips_per_core_second(paths: list[str], passes: int) -> tuple[float, int, float]:
    """(clips/s, clips, seconds) of the preset's training clips from ``paths`` on one core."""
    spec = clip_spec("kinetics")
    clips, began = 0, time.perf_counter()
    with one_cpu():
        for epoch in range(passes):
            for number, path in enumerate(paths):
                clips += len(decode_views(path, 0, spec, "train", epoch, key=f"video{number}"))
    seconds = time.perf_counter() - began
    return clips / seconds, clips, seconds


def median_round(runs: list[tuple[float, int, float]]) -> tuple[float, int, float]:
    """The round with the median rate (the lower middle one of an even count)."""
    return sorted(runs)[(len(runs) - 1) // 2]


def frame_difference(originals: list[str], copies: list[str]) -> float:
    """Mean absolute difference (0-255) between the centre evaluation clips of each pair."""
    spec = clip_spec("kinetics")
    total = []
    for original, copy in zip(originals, copies):
        a, b = (decode_views(p, 0, spec, "eval", 0, key="same")[0][0].astype(np.float32) for p in (original, copy))
        total.append(float(np.abs(a - b).mean()))
    return float(np.mean(total))


def measure(args: argparse.Namespace, scratch: Path) -> dict:
    width, height = (int(side) for side in args.source_size.lower().split("x"))
    originals = kinetics_like_videos(scratch / f"youtube-{width}x{height}", args.videos, width=width, height=height,
                                     frames=300, fps=30, keyframe_interval=250).paths
    spec = Reencoding(args.short_side, args.keyframe_interval)
    copies = [str(scratch / f"copies-{width}x{height}-{spec.short_side}p-k{spec.keyframe_interval}" / Path(p).name)
              for p in originals]
    made = [reencode_video(source, target, spec) for source, target in zip(originals, copies)]
    rounds = {"original": [], "reencoded": []}
    for _ in range(args.rounds):  # in turn, so a slow spell of the machine hits both sides
        for side, paths in (("original", originals), ("reencoded", copies)):
            rounds[side].append(clips_per_core_second(paths, args.passes))
    (original_rate, clips, original_s), (copy_rate, _, copy_s) = (median_round(rounds[side]) for side in rounds)
    return {"original_clips_per_core_s": round(original_rate, 2), "reencoded_clips_per_core_s": round(copy_rate, 2),
            "speedup": round(copy_rate / original_rate, 2), "clips": clips,
            "original_seconds": round(original_s, 2), "reencoded_seconds": round(copy_s, 2),
            "rounds": {side: [round(r[0], 2) for r in runs] for side, runs in rounds.items()},
            "mean_abs_difference": round(frame_difference(originals, copies), 2),
            "bytes_original": sum(os.path.getsize(p) for p in originals),
            "bytes_reencoded": sum(os.path.getsize(p) for p in copies),
            "reencode_seconds_per_video": (round(float(np.mean([m["seconds"] for m in made if m["made"]])), 2)
                                           if any(m["made"] for m in made) else None),  # None: copies from before
            "setup": {"videos": args.videos, "passes": args.passes, "short_side": spec.short_side,
                      "keyframe_interval": spec.keyframe_interval, "source": f"{width}x{height}, 30 fps, 300 frames, keyint 250"}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as temporary:
        report = measure(args, Path(args.scratch or temporary))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"kinetics training clips per core-second ({report['clips']} clips a round, one pinned core, "
          f"median of {len(report['rounds']['original'])} rounds):\n"
          f"  as downloaded ({report['setup']['source']})  {report['original_clips_per_core_s']:7.2f}\n"
          f"  re-encoded (short side <= {report['setup']['short_side']}, a keyframe every "
          f"{report['setup']['keyframe_interval']} frames)  {report['reencoded_clips_per_core_s']:7.2f}   "
          f"{report['speedup']:.2f}x\n"
          f"  frames: mean absolute difference {report['mean_abs_difference']:.2f} of 255; disk "
          f"{report['bytes_original'] / 1e6:.1f} MB -> {report['bytes_reencoded'] / 1e6:.1f} MB"
          + (f"; {report['reencode_seconds_per_video']:.2f} s to re-encode a video"
             if report["reencode_seconds_per_video"] is not None else ""))
    return 0
