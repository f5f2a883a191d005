#!/usr/bin/env python
"""Command line for SmallBigNet research: models, data, training, sweeps.

    python run.py ablation --grid receptive_field   # the paper's Table 4 on Ray Tune (the main job)
    python run.py ablation --list             # every grid and its rows
    python run.py train --model smallbig_r23_full --preset laptop --data synthetic --name first
    python run.py eval --checkpoint runs/first --data DIR       # a run folder: its latest checkpoint
    python run.py predict --checkpoint runs/first video.mp4
    python run.py flops --model smallbig_r23_full --frames 8 --size 224 --classes 400
    python run.py models                      # every registered model
    python run.py data synth --out data/synth # the built-in temporal benchmark (dataset folder)
    python run.py ui                          # the MLflow UI for the local store
    python run.py bench train|model|data      # speed against baselines measured in the same run
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


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


def experiment_from_args(args: argparse.Namespace):
    """The preset, then ``--config``, the flags and ``--set`` overrides (``pipelines.config``)."""
    from pipelines.config import experiment_from_args as build
    from pipelines.presets import preset

    return build(args, preset(args.preset))


def cmd_train(args: argparse.Namespace) -> int:
    from pipelines.cluster import start_ray
    from pipelines.training.driver import fit

    config = experiment_from_args(args)
    start_ray(args.address)
    result = fit(config, run_test=not args.no_test)
    print(f"\nrun {result.name}: checkpoint {result.checkpoint}")
    if result.test:
        print("test: " + "  ".join(f"{k.removeprefix('test_')} {v:.2f}" for k, v in result.test.items()))
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from pipelines.sweeps.grids import builtin_grids, describe, load_grid

    if args.list:
        print(describe(builtin_grids()))
        return 0
    from pipelines.cluster import start_ray
    from pipelines.sweeps.sweep import run_sweep

    grid = load_grid(args.grid)
    config = experiment_from_args(args)
    name = args.name or f"{grid.name}-{config.preset}"
    start_ray(args.address)
    result = run_sweep(grid, config, name=name, seeds=args.seeds, max_concurrent=args.max_concurrent)
    print("\n" + result.table.markdown() + "\n")
    for path in result.artifacts:
        print(f"wrote {path}")
    print(f"MLflow: parent run {result.parent_run_id} (`python run.py ui`, experiment {config.run.experiment!r})")
    if not result.complete:
        print(f"some trials did not finish; run the same command again (--name {name}) to resume them",
              file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pipelines.cluster import start_ray
    from pipelines.training.checkpoints import find_checkpoint
    from pipelines.training.testing import evaluate_checkpoint, write_report

    checkpoint = find_checkpoint(args.checkpoint)
    start_ray(args.address)
    report = evaluate_checkpoint(checkpoint, args.data, args.split, clips=args.clips, crops=args.crops,
                                 batch_size=args.batch_size)
    print(report.table())
    out = args.out or str(Path(checkpoint) / f"eval-{args.split}")
    for path in write_report(report, out):
        print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pipelines.training.testing import predict_files

    failed = 0
    for result in predict_files(args.checkpoint, args.videos, top=args.top):
        if "error" in result:
            failed += 1
            print(f"{result['path']}: cannot read: {result['error']}")
            continue
        print(result["path"])
        for name, probability in result["top"]:
            print(f"  {probability:6.1%}  {name}")
    return 1 if failed else 0


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from pipelines.tracking import tracking_uri

    uri = tracking_uri(args.storage)
    print(f"MLflow UI for {uri}\n  http://{args.host}:{args.port}", flush=True)
    return subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                            "--host", args.host, "--port", str(args.port)])


def cmd_models(args: argparse.Namespace) -> int:
    import smallbig

    for name in smallbig.list_models(args.pattern):
        print(f"{name:32s} {smallbig.get_entry(name).description}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from pipelines.data.synthetic import write_synthetic

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
    elif args.what == "train":
        from benchmarks.training import main as bench_main
    else:
        raise SystemExit(f"unknown benchmark {args.what!r}")
    return bench_main(args.rest + (["--json"] if args.json else []))


def add_flops(commands) -> None:
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


def add_train(commands) -> None:
    from pipelines.config import add_experiment_flags
    from pipelines.presets import PRESETS

    train = commands.add_parser("train", help="train a model on Ray Train, tracked in MLflow")
    add_experiment_flags(train, sorted(PRESETS))
    train.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    train.add_argument("--no-test", action="store_true", help="skip the multi-view test at the end")
    train.set_defaults(func=cmd_train)

    ablation = commands.add_parser(
        "ablation", help="one of the paper's ablation grids on Ray Tune, tracked in MLflow (the main job)",
        description="Every row of a grid is a Ray Tune trial that trains and tests one model on Ray Train. "
                    "The same --name resumes an interrupted sweep.")
    ablation.add_argument("--grid", default="receptive_field",
                          help="a built-in grid (see --list) or a YAML grid file (default: receptive_field)")
    ablation.add_argument("--list", action="store_true", help="print every built-in grid with its rows")
    add_experiment_flags(ablation, sorted(PRESETS), skip=("--model", "--init-2d"))
    ablation.add_argument("--seeds", type=int, default=1, help="repeat every row with this many seeds")
    ablation.add_argument("--max-concurrent", type=int, help="trials at a time (default: what the cluster holds)")
    ablation.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    ablation.set_defaults(func=cmd_ablation)


def add_checkpoint_commands(commands) -> None:
    evaluate = commands.add_parser("eval", help="multi-view test of a checkpoint")
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint folder, or a run folder (its latest)")
    evaluate.add_argument("--data", required=True, help="the dataset folder")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--clips", type=int, help="clips per video (default: the training recipe's)")
    evaluate.add_argument("--crops", type=int, choices=[1, 3])
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--out", help="folder for metrics.json, per_class.csv, confusion.png")
    evaluate.add_argument("--address")
    evaluate.set_defaults(func=cmd_eval)

    predict = commands.add_parser("predict", help="top-5 classes for video files")
    predict.add_argument("--checkpoint", required=True, help="a checkpoint folder, or a run folder (its latest)")
    predict.add_argument("--top", type=int, default=5)
    predict.add_argument("videos", nargs="+")
    predict.set_defaults(func=cmd_predict)


def add_tools(commands) -> None:
    ui = commands.add_parser("ui", help="start the MLflow UI for the local store")
    ui.add_argument("--storage", default="runs")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

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
    bench.add_argument("what", choices=["model", "data", "train"])
    bench.add_argument("--json", action="store_true")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options for the benchmark")
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_flops, add_train, add_checkpoint_commands, add_tools):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (ValueError, KeyError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
