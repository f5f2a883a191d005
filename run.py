#!/usr/bin/env python
"""Command line for SmallBigNet research: models, data, training, sweeps.

    python run.py flops --model smallbig_r23_full --frames 8 --size 224 --classes 400
    python run.py models                      # every registered model
    python run.py bench model                 # SmallBig vs 2D step time against GMACs
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

    if args.table:
        return _flops_table(args)
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


def _flops_table(args: argparse.Namespace) -> int:
    """One paper table: our parameter and GMAC counts beside the figures the paper reports."""
    import smallbig

    table = smallbig.PAPER_TABLES[args.table]
    rows = []
    for row in table.rows:
        model = smallbig.build_model(row.model, num_classes=args.classes, num_frames=row.frames,
                                     **row.options, **parse_overrides(args.set))
        rows.append({"row": row.label, "model": row.model, "frames": row.frames,
                     "params": smallbig.count_parameters(model),
                     "gmacs": round(smallbig.count_gmacs(model, frames=row.frames, size=args.size), 4),
                     "paper_params_m": row.reported_params_m, "paper_gmacs": row.reported_gmacs,
                     "paper_top1": row.reported_top1})
    if args.json:
        print(json.dumps({"table": table.key, "title": table.title, "rows": rows}))
        return 0
    show = lambda v: "" if v is None else str(v)
    print(f"{table.key}: {table.title} ({args.size}x{args.size}, {args.classes} classes)\n")
    print("| row | model | params (M) | paper | GMACs | paper | paper top-1 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['row']} | {r['model']} ({r['frames']}f) | {r['params'] / 1e6:.2f} | {show(r['paper_params_m'])} "
              f"| {r['gmacs']:.2f} | {show(r['paper_gmacs'])} | {show(r['paper_top1'])} |")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import smallbig

    for name in smallbig.list_models(args.pattern):
        print(f"{name:32s} {smallbig.get_entry(name).description}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "model":
        from benchmarks.model_step import main as bench_main
    else:
        raise SystemExit(f"unknown benchmark {args.what!r}")
    return bench_main(args.rest + (["--json"] if args.json else []))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    flops = commands.add_parser("flops", help="parameters and GMACs of a model")
    which = flops.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a registered model (see `run.py models`)")
    which.add_argument("--table", choices=sorted(__import__("smallbig").PAPER_TABLES),
                       help="every row of one of the paper's tables, beside the paper's figures")
    flops.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model option")
    flops.add_argument("--frames", type=int, default=8)
    flops.add_argument("--size", type=int, default=224)
    flops.add_argument("--classes", type=int, default=400)
    flops.add_argument("--json", action="store_true", help="print one JSON object")
    flops.set_defaults(func=cmd_flops)

    models = commands.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*")
    models.set_defaults(func=cmd_models)

    bench = commands.add_parser("bench", help="speed benchmarks (see benchmarks/)")
    bench.add_argument("what", choices=["model"])
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
