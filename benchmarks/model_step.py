"""Training-step speed of a SmallBig net against its 2D baseline, next to their GMAC ratio.

Sharing one conv between the two views should cost what its multiply-accumulates cost:
the time ratio (SmallBig step / 2D step) should sit near the GMAC ratio (31.5 / 17 = 1.85
for R23 Full vs R23 2D). Steps of the two models alternate so that a busy machine slows
both alike; the ratio of medians is reported.

    python run.py bench model [--json] [--threads 2] [--batch 2] [--frames 8] [--size 112]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import smallbig


def _step(model: torch.nn.Module, clip: torch.Tensor) -> float:
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    model(clip).logsumexp(dim=1).sum().backward()
    return time.perf_counter() - start


def measure(baseline: str = "r23_2d", candidate: str = "smallbig_r23_full", *, batch: int = 2,
            frames: int = 8, size: int = 112, steps: int = 8, warmup: int = 2,
            memory_format: str = "channels_last", threads: int = 2) -> dict:
    """Median forward+backward time of both models on the same input, and their ratios."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if memory_format == "channels_last" else torch.contiguous_format
    clip = torch.randn(batch, 3, frames, size, size).contiguous(memory_format=fmt)
    models = {name: smallbig.build_model(name, num_classes=400, num_frames=frames).to(memory_format=fmt)
              for name in (baseline, candidate)}
    times = {name: [] for name in models}
    for i in range(warmup + steps):
        for name, model in models.items():
            elapsed = _step(model, clip)
            if i >= warmup:
                times[name].append(elapsed)
    median = {name: statistics.median(t) for name, t in times.items()}
    gmacs = {name: smallbig.count_gmacs(m, frames=frames, size=size) for name, m in models.items()}
    time_ratio = median[candidate] / median[baseline]
    gmac_ratio = gmacs[candidate] / gmacs[baseline]
    return {
        "baseline": baseline, "candidate": candidate,
        "input": [batch, 3, frames, size, size], "threads": threads, "memory_format": memory_format,
        "baseline_clips_per_s": batch / median[baseline], "candidate_clips_per_s": batch / median[candidate],
        "baseline_gmacs": gmacs[baseline], "candidate_gmacs": gmacs[candidate],
        "time_ratio": time_ratio, "gmac_ratio": gmac_ratio,
        "time_over_gmac": time_ratio / gmac_ratio,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py bench model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="r23_2d")
    parser.add_argument("--candidate", default="smallbig_r23_full")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.baseline, args.candidate, batch=args.batch, frames=args.frames, size=args.size,
                     steps=args.steps, memory_format=args.memory_format, threads=args.threads)
    if args.json:
        print(json.dumps(result))
        return 0
    b, c = result["baseline"], result["candidate"]
    print(f"forward+backward, input {'x'.join(map(str, result['input']))}, {args.threads} threads, "
          f"{args.memory_format}")
    print(f"  {b:22s} {result['baseline_clips_per_s']:7.2f} clips/s  {result['baseline_gmacs']:6.2f} GMACs")
    print(f"  {c:22s} {result['candidate_clips_per_s']:7.2f} clips/s  {result['candidate_gmacs']:6.2f} GMACs")
    print(f"  time ratio {result['time_ratio']:.2f}x   GMAC ratio {result['gmac_ratio']:.2f}x   "
          f"time/GMAC {result['time_over_gmac']:.2f} (1.00 = costs exactly its FLOPs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
