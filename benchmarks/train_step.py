"""The project's training step (``pipelines.training.step.train_epoch``) on in-memory clips.

What the Ray pipeline runs per batch, without Ray or a decoder: autocast in bf16, or fp16
with a GradScaler, SGD with the cosine schedule, the meters. The clips are a fixed set the
model can memorise, so a working step shows a falling loss; clips/s is the step's own
ceiling, the rate no data pipeline can beat.

    python -m benchmarks.train_step [--json] [--device cuda] [--amp bf16|fp16|none] [--steps 50]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

from pipelines.config import OptimSection
from pipelines.data.batches import ClipBatch
from pipelines.errors import UsageError
from pipelines.training.step import cosine_with_warmup, make_optimizer, train_epoch

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def memorisable_batches(steps: int, batch: int, classes: int, frames: int, size: int, device: torch.device,
                        distinct: int = 4, seed: int = 0) -> list[ClipBatch]:
    """``steps`` batches cycling over ``distinct`` fixed batches of random clips and labels."""
    generator = torch.Generator().manual_seed(seed)
    fixed = []
    for _ in range(distinct):
        clips = torch.randn(batch, 3, frames, size, size, generator=generator).to(device)
        labels = torch.randint(0, classes, (batch,), generator=generator).to(device)
        index = torch.arange(batch)
        fixed.append(ClipBatch(clips.contiguous(memory_format=torch.channels_last_3d), labels, index, index * 0))
    return [fixed[i % distinct] for i in range(steps)]


def measure(model_name: str = "smallbig_r50_full", *, device: str = "cpu", amp: str = "bf16", steps: int = 50,
            batch: int = 16, frames: int = 8, size: int = 224, classes: int = 400, lr: float = 0.01,
            threads: int = 2, options: dict | None = None, warmup: int = 0) -> dict:
    """Clips/s of ``steps`` training steps on in-memory tensors, after ``warmup`` untimed ones
    (the first steps of a process allocate and pick kernels)."""
    import smallbig

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dtype = AMP_DTYPES[amp]
    model = smallbig.build_model(model_name, num_classes=classes, num_frames=frames, **(options or {}))
    model = model.to(dev).to(memory_format=torch.channels_last_3d)
    optimizer = make_optimizer(model, OptimSection(lr=lr, base_batch=batch), batch)  # lr as given
    scheduler = cosine_with_warmup(optimizer, steps, max(1, steps // 10))
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    batches = memorisable_batches(steps, batch, classes, frames, size, dev)
    if warmup:
        train_epoch(model, batches[:warmup], optimizer, scheduler, scaler, num_classes=classes, device=dev,
                    dtype=dtype, memory_format=torch.channels_last_3d)
    losses: list[float] = []
    start = time.perf_counter()
    metrics = train_epoch(model, batches, optimizer, scheduler, scaler, num_classes=classes, device=dev,
                          dtype=dtype, memory_format=torch.channels_last_3d,
                          progress=lambda clips, loss: losses.append(loss))
    elapsed = time.perf_counter() - start
    window = max(1, min(5, steps // 4))
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    return {"model": model_name, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "amp": amp, "grad_scaler": dtype == torch.float16, "steps": steps, "batch": batch,
            "clip": [frames, size, size], "clips_per_s": steps * batch / elapsed,
            "train_clips_per_s": metrics["train_clips_per_s"], "first_loss": first, "last_loss": last,
            "loss_finite": all(math.isfinite(x) for x in losses), "loss_fell": last < first,
            "scale": scaler.get_scale() if scaler.is_enabled() else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smallbig_r50_full")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), default="bf16")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.model, device=args.device, amp=args.amp, steps=args.steps, batch=args.batch,
                     frames=args.frames, size=args.size, classes=args.classes, threads=args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']} on {result['device']}, amp {result['amp']}"
              f"{' + GradScaler' if result['grad_scaler'] else ''}: {result['clips_per_s']:.1f} clips/s, "
              f"loss {result['first_loss']:.3f} -> {result['last_loss']:.3f} "
              f"({'finite' if result['loss_finite'] else 'NOT FINITE'}, {'falling' if result['loss_fell'] else 'NOT falling'})")
    return 0 if result["loss_finite"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
