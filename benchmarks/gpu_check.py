"""The GPU measurements in one run: SmallBig-R50 Full against R50 2D, eager and compiled, then the AMP step.

    bash benchmarks/gpu_check.sh            # on a machine with one CUDA GPU; PyTorch is all it needs

Prints one table and writes every figure as JSON (``--out``). The targets it checks:
SmallBig-R50 Full's step within 1.15x of (GMAC ratio x R50 2D's step); R50 2D at >= 35% of
the device's dense bf16 peak; SmallBig's peak memory over the 2D net's at most their GMAC ratio.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import model_step, train_step


def model_rows(args) -> list[dict]:
    rows = []
    for compiled in ([False, True] if args.compile else [False]):
        started = time.perf_counter()
        result = model_step.measure("r50_2d", "smallbig_r50_full", batch=args.batch, frames=args.frames,
                                    size=args.size, steps=args.steps, warmup=args.warmup, device=args.device,
                                    amp="bf16", compile_model=compiled, threads=args.threads)
        result["seconds"] = time.perf_counter() - started
        rows.append(result)
    return rows


def step_rows(args) -> list[dict]:
    return [train_step.measure("smallbig_r50_full", device=args.device, amp=amp, steps=args.train_steps,
                               batch=args.batch, frames=args.frames, size=args.size, threads=args.threads)
            for amp in ("bf16", "fp16")]


def targets(row: dict) -> dict[str, bool | None]:
    fraction = row.get("baseline_fraction_of_peak")
    memory = row.get("memory_ratio")
    return {"time within 1.15x of GMAC ratio": row["time_over_gmac"] <= 1.15,
            "2D at >= 35% of peak": None if fraction is None else fraction >= 0.35,
            "memory ratio <= GMAC ratio": None if memory is None else memory <= row["gmac_ratio"]}


def print_report(models: list[dict], steps: list[dict]) -> None:
    mark = {True: "yes", False: "NO", None: "n/a"}
    print(f"| R50 2D vs SmallBig-R50 Full, bf16, {'x'.join(map(str, models[0]['input']))} on {models[0]['device']} "
          f"| 2D clips/s | SmallBig clips/s | time ratio | GMAC ratio | memory ratio | 2D TFLOP/s (of peak) "
          f"| SmallBig TFLOP/s | targets met |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in models:
        fraction = row.get("baseline_fraction_of_peak")
        met = ", ".join(f"{name}: {mark[ok]}" for name, ok in targets(row).items())
        print(f"| {'compiled' if row['compile'] else 'eager'} | {row['baseline_clips_per_s']:.1f} "
              f"| {row['candidate_clips_per_s']:.1f} | {row['time_ratio']:.2f} | {row['gmac_ratio']:.2f} "
              f"| {row.get('memory_ratio', float('nan')):.2f} | {row['baseline_achieved_tflops']:.0f}"
              f"{f' ({fraction:.0%})' if fraction is not None else ''} | {row['candidate_achieved_tflops']:.0f} | {met} |")
    print()
    print("| training step (train_epoch), SmallBig-R50 Full | clips/s | loss first -> last | finite | falling |")
    print("|---|---:|---|---|---|")
    for row in steps:
        print(f"| {row['amp']}{' + GradScaler' if row['grad_scaler'] else ''}, {row['steps']} steps of {row['batch']} "
              f"| {row['clips_per_s']:.1f} | {row['first_loss']:.3f} -> {row['last_loss']:.3f} "
              f"| {mark[row['loss_finite']]} | {mark[row['loss_fell']]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="timed model steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    parser.add_argument("--out", help="write every figure here as JSON")
    args = parser.parse_args(argv)
    models, steps = model_rows(args), step_rows(args)
    print_report(models, steps)
    if args.out:
        Path(args.out).write_text(json.dumps({"models": models, "train_step": steps}, indent=1))
    return 0 if all(row["loss_finite"] for row in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
