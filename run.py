#!/usr/bin/env python
"""Command line for SmallBigNet research: models, data, training, sweeps.

    python run.py flops --model smallbig_r23_full --frames 8 --size 224 --classes 400
    python run.py models                      # every registered model
    python run.py bench model                 # SmallBig vs 2D step time against GMACs
    python run.py data synth --out data/synth # the built-in temporal benchmark (dataset folder)
    python run.py bench data                  # clips/s: one process, DataLoader, Ray Data
"""
from __future__ import annotations

import argparse
import json
import sys

import yaml


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` pairs; values are read as YAML (``3``, ``true``, ``[3x3x3, null, null]``)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: expected key=value")
        options[key.strip()] = yaml.safe_load(value)
    return options


def cmd_flops(args: argparse.Namespace) -> int:
    import smallbig

    model = smallbig.build_model(args.model, num_classes=args.classes, num_frames=args.frames,
                                 **parse_overrides(args.set))
    result = {
        "model": args.model,
        "params": smallbig.count_parameters(model),
        "gmacs": round(smallbig.count_gmacs(model, frames=args.frames, size=args.size), 4),
        "frames": args.frames,
        "size": args.size,
        "classes": args.classes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model}: {result['params'] / 1e6:.2f}M params, {result['gmacs']:.2f} GMACs "
              f"per {args.frames}x{args.size}x{args.size} clip ({args.classes} classes)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import smallbig

    for name in smallbig.list_models(args.pattern):
        print(f"{name:32s} {smallbig.get_entry(name).description}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from pipelines.synthetic import write_synthetic

    summary = write_synthetic(args.out, videos_per_class=args.videos_per_class, size=args.size,
                              frames=args.frames, seed=args.seed)
    print(f"wrote {summary['videos']} videos of {summary['classes']} classes to {summary['out']} "
          f"(train/val/test {summary['splits']['train']}/{summary['splits']['val']}/{summary['splits']['test']}) "
          f"in {summary['seconds']:.1f} s")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "model":
        from benchmarks.model_step import main as bench_main
    elif args.what == "data":
        from benchmarks.data_loading import main as bench_main
    else:
        raise SystemExit(f"unknown benchmark {args.what!r}")
    return bench_main(args.rest + (["--json"] if args.json else []))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    flops = commands.add_parser("flops", help="parameters and GMACs of a model")
    flops.add_argument("--model", required=True)
    flops.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model option")
    flops.add_argument("--frames", type=int, default=8)
    flops.add_argument("--size", type=int, default=224)
    flops.add_argument("--classes", type=int, default=400)
    flops.add_argument("--json", action="store_true", help="print one JSON object")
    flops.set_defaults(func=cmd_flops)

    models = commands.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*")
    models.set_defaults(func=cmd_models)

    data = commands.add_parser("data", help="datasets: write the built-in synthetic benchmark")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    synth = data_commands.add_parser("synth", help="write the temporal benchmark as a dataset folder")
    synth.add_argument("--out", required=True, help="dataset folder to write (read back with --data DIR)")
    synth.add_argument("--videos-per-class", type=int, default=30)
    synth.add_argument("--size", type=int, default=64, help="frame side in pixels (even)")
    synth.add_argument("--frames", type=int, default=32)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_data)

    bench = commands.add_parser("bench", help="speed benchmarks (see benchmarks/)")
    bench.add_argument("what", choices=["model", "data"])
    bench.add_argument("--json", action="store_true")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options for the benchmark")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
