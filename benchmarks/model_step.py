"""Training-step speed of a SmallBig net against its 2D baseline, next to their GMAC ratio.

Sharing one conv between the two views should cost what its multiply-accumulates cost:
the time ratio (SmallBig step / 2D step) should sit near the GMAC ratio (31.5 / 17 = 1.85
for R23 Full vs R23 2D). Steps of the two models alternate so that a busy machine slows
both alike; the ratio of medians is reported. A step is forward + backward, whose cost is
about 3 forward passes: achieved TFLOP/s = 3 x 2 x forward MACs x batch / step time.

    python run.py bench model [--json] [--device cpu|cuda] [--amp none|bf16|fp16] [--compile]
                              [--batch 2] [--frames 8] [--size 112] [--threads 2]

Needs only PyTorch and ``smallbig`` (it runs on a GPU machine without Ray or MLflow).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch

import smallbig
from pipelines.errors import UsageError

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# Dense (no sparsity) bf16/fp16 tensor-core peaks from the vendors' datasheets, in TFLOP/s,
# matched against torch.cuda.get_device_name(); the first matching key wins.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0,
               "A10": 125.0, "V100": 125.0, "T4": 65.0}


def peak_tflops(device: torch.device) -> tuple[str, float | None]:
    """The device's name and its datasheet dense bf16 peak (None for a CPU or an unknown GPU)."""
    if device.type != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


class Stepper:
    """One model's forward+backward on a fixed clip, under autocast (and a GradScaler for fp16)."""

    def __init__(self, model: torch.nn.Module, clip: torch.Tensor, dtype: torch.dtype | None) -> None:
        self.model, self.clip, self.dtype = model, clip, dtype
        self.device = clip.device
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype == torch.float16)

    def __call__(self) -> float:
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None else nullcontext())
        self._sync()
        start = time.perf_counter()
        self.model.zero_grad(set_to_none=True)
        with autocast:
            loss = self.model(self.clip).float().logsumexp(dim=1).sum()
        self.scaler.scale(loss).backward()
        self._sync()
        return time.perf_counter() - start

    def peak_memory(self) -> int | None:
        """Bytes allocated at the peak of one step (CUDA only)."""
        if self.device.type != "cuda":
            return None
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        self()
        return int(torch.cuda.max_memory_allocated(self.device))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def measure(baseline: str = "r23_2d", candidate: str = "smallbig_r23_full", *, batch: int = 2,
            frames: int = 8, size: int = 112, steps: int = 8, warmup: int = 2,
            memory_format: str = "channels_last", threads: int = 2, device: str = "cpu",
            amp: str = "none", compile_model: bool = False, classes: int = 400) -> dict:
    """Median forward+backward time of both models on the same input, their ratios and FLOP rates."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    if amp not in AMP_DTYPES:
        raise UsageError(f"--amp {amp!r}: expected one of {sorted(AMP_DTYPES)}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if memory_format == "channels_last" else torch.contiguous_format
    clip = torch.randn(batch, 3, frames, size, size, device=dev).contiguous(memory_format=fmt)
    gmacs, steppers = {}, {}
    for name in (baseline, candidate):
        model = smallbig.build_model(name, num_classes=classes, num_frames=frames)
        gmacs[name] = smallbig.count_gmacs(model, frames=frames, size=size)
        model = model.to(dev).to(memory_format=fmt)
        steppers[name] = Stepper(torch.compile(model) if compile_model else model, clip, AMP_DTYPES[amp])
    times = {name: [] for name in steppers}
    for i in range(warmup + steps):
        for name, step in steppers.items():
            elapsed = step()
            if i >= warmup:
                times[name].append(elapsed)
    median = {name: statistics.median(t) for name, t in times.items()}
    memory = {name: step.peak_memory() for name, step in steppers.items()}
    device_name, peak = peak_tflops(dev)
    result = {
        "baseline": baseline, "candidate": candidate, "input": [batch, 3, frames, size, size],
        "threads": threads, "memory_format": memory_format, "device": device_name, "amp": amp,
        "compile": compile_model, "steps": steps,
        "time_ratio": median[candidate] / median[baseline], "gmac_ratio": gmacs[candidate] / gmacs[baseline],
    }
    result["time_over_gmac"] = result["time_ratio"] / result["gmac_ratio"]
    for role, name in (("baseline", baseline), ("candidate", candidate)):
        tflops = 3 * 2 * gmacs[name] * 1e9 * batch / median[name] / 1e12
        result.update({f"{role}_clips_per_s": batch / median[name], f"{role}_step_s": median[name],
                       f"{role}_gmacs": gmacs[name], f"{role}_achieved_tflops": tflops})
        if memory[name] is not None:
            result[f"{role}_peak_memory_bytes"] = memory[name]
        if peak is not None:
            result[f"{role}_fraction_of_peak"] = tflops / peak
    if peak is not None:
        result["peak_tflops"] = peak
    if memory[baseline]:
        result["memory_ratio"] = memory[candidate] / memory[baseline]
    return result


def print_table(result: dict) -> None:
    b, c = result["baseline"], result["candidate"]
    print(f"forward+backward, input {'x'.join(map(str, result['input']))} on {result['device']}, "
          f"amp {result['amp']}, {'compiled' if result['compile'] else 'eager'}, {result['memory_format']}")
    for role, name in (("baseline", b), ("candidate", c)):
        memory = result.get(f"{role}_peak_memory_bytes")
        fraction = result.get(f"{role}_fraction_of_peak")
        print(f"  {name:22s} {result[f'{role}_clips_per_s']:8.2f} clips/s  {result[f'{role}_gmacs']:7.2f} GMACs  "
              f"{result[f'{role}_achieved_tflops']:7.2f} TFLOP/s"
              + (f" ({fraction:.0%} of {result['peak_tflops']:.0f})" if fraction is not None else "")
              + (f"  peak memory {memory / 2**30:.2f} GiB" if memory is not None else ""))
    print(f"  time ratio {result['time_ratio']:.2f}x   GMAC ratio {result['gmac_ratio']:.2f}x   "
          f"time/GMAC {result['time_over_gmac']:.2f} (1.00 = costs exactly its FLOPs)"
          + (f"   memory ratio {result['memory_ratio']:.2f}x" if "memory_ratio" in result else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py bench model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="r23_2d")
    parser.add_argument("--candidate", default="smallbig_r23_full")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), default="none",
                        help="autocast dtype; fp16 runs with a GradScaler (bf16 autocast also exists on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.baseline, args.candidate, batch=args.batch, frames=args.frames, size=args.size,
                     steps=args.steps, warmup=args.warmup, memory_format=args.memory_format,
                     threads=args.threads, device=args.device, amp=args.amp, compile_model=args.compile,
                     classes=args.classes)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
