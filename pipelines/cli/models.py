"""Commands about the models alone (plain PyTorch, no Ray): ``flops``, ``models``."""
from __future__ import annotations

import argparse
import json


def cmd_flops(args: argparse.Namespace) -> int:
    import smallbig
    from pipelines.config import parse_overrides

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
    from pipelines.config import parse_overrides

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


def add_flops(commands) -> None:
    import smallbig

    flops = commands.add_parser("flops", help="parameters and GMACs of a model")
    which = flops.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a registered model (see `run.py models`)")
    which.add_argument("--table", choices=sorted(smallbig.PAPER_TABLES),
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
