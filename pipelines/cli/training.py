"""Commands that train, sweep, test and predict on Ray, tracked in MLflow: ``train``, ``ablation``,
``eval``, ``predict``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_ray_flags(parser: argparse.ArgumentParser, cluster_help: str = "a Ray cluster to run on") -> None:
    """``--address`` and ``--dashboard``: which Ray a command runs on, and whether a Ray it starts
    here serves its dashboard (off by default: see ``pipelines.cluster.start_ray``)."""
    parser.add_argument("--address", help=f"{cluster_help} (default: RAY_ADDRESS, else a Ray started here)")
    parser.add_argument("--dashboard", action="store_true",
                        help="start Ray's dashboard with a Ray started here (on 127.0.0.1; a cluster has its own)")


def add_test_worker_flags(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--gpus-per-worker``: who scores the test views (``eval``, ``reversal``)."""
    parser.add_argument("--workers", type=int, default=1, help="tasks scoring a shard of the views each")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per scoring task")


def test_resources(args: argparse.Namespace):
    """(test workers, decode pool) that fit the Ray cluster together: on CPUs the workers take half
    of it, at most one CPU each, and the decode actors the rest; with GPUs, one CPU per worker."""
    import ray

    from pipelines.cluster import fit_decode_pool
    from pipelines.training.scoring import TestWorkers

    cpus = float(ray.cluster_resources().get("CPU", 1))
    per_worker = 1.0 if args.gpus_per_worker > 0 else min(1.0, cpus / (2 * args.workers))
    workers = TestWorkers(args.workers, per_worker, args.gpus_per_worker)
    return workers, fit_decode_pool(train_workers=args.workers, cpus_per_worker=per_worker, cluster_cpus=cpus)


def experiment_from_args(args: argparse.Namespace):
    """The preset, then ``--config``, the flags and ``--set`` overrides (``pipelines.config``)."""
    from pipelines.config import experiment_from_args as build
    from pipelines.presets import preset

    return build(args, preset(args.preset))


def start_quiet_ray(args: argparse.Namespace, storage: str, name: str) -> None:
    """Ray started (or joined) with its output in ``<storage>/logs/<name>.log``; on the console only
    with ``--verbose`` (``pipelines.cli.console``)."""
    from pipelines.cli.console import log_path, setup_console
    from pipelines.cluster import start_ray

    log_file = setup_console(log_path(storage, name), args.verbose)
    log.info("log: %s%s", log_file, "" if args.verbose else "  (Ray's own output; --verbose shows it here too)")
    context = start_ray(args.address, route_output=True, verbose=args.verbose, dashboard=args.dashboard)
    if context is not None:
        session = (getattr(context, "address_info", None) or {}).get("session_dir")
        where = f"dashboard http://{context.dashboard_url}" if context.dashboard_url else "no dashboard (--dashboard)"
        log.info("Ray: %s%s", where, f", its own logs in {session}/logs" if session else "")


def cmd_train(args: argparse.Namespace) -> int:
    from pipelines.training.driver import fit, run_name

    config = experiment_from_args(args)
    start_quiet_ray(args, config.run.storage, run_name(config))
    result = fit(config, run_test=not args.no_test)
    print(f"\nrun {result.name}: checkpoint {result.checkpoint}")
    if result.test:
        print(test_summary(result.test))
    return 0


def test_summary(test: dict[str, float]) -> str:
    """The run's test line: top-1 and top-5 with 95% Wilson intervals over the videos scored. They
    cover the choice of test videos only: one trained model, so not the noise of retraining it."""
    from pipelines.sweeps.statistics import wilson_interval
    from pipelines.training.metrics import MEAN_CLASS_ACC, TEST, TEST_TOP1, TEST_TOP5

    videos = int(test.get(TEST + "videos", 0))
    parts = []
    for name, key in (("top-1", TEST_TOP1), ("top-5", TEST_TOP5)):
        low, high = wilson_interval(round(test[key] * videos / 100), videos)
        parts.append(f"{name} {test[key]:.1f} [{low:.1f}, {high:.1f}]")
    return (f"test: {'  '.join(parts)}  mean class accuracy {test[TEST + MEAN_CLASS_ACC]:.1f}  "
            f"({videos} videos scored, {int(test.get(TEST + 'videos_unreadable', 0))} unreadable; "
            "95% intervals over the test videos, not over retraining)")


def cmd_ablation(args: argparse.Namespace) -> int:
    from pipelines.sweeps.grids import builtin_grids, describe, load_grid

    if args.list:
        print(describe(builtin_grids()))
        return 0
    from pipelines.sweeps.race import SeedPlan
    from pipelines.sweeps.sweep import run_sweep

    grid = load_grid(args.grid)
    SeedPlan.parse(args.seeds, args.budget, len(grid.rows))  # a bad --seeds or --budget stops before Ray starts
    config = experiment_from_args(args)
    name = args.name or f"{grid.name}-{config.preset}"
    start_quiet_ray(args, config.run.storage, name)
    result = run_sweep(grid, config, name=name, seeds=args.seeds, budget=args.budget,
                       max_concurrent=args.max_concurrent, verbose=args.verbose)
    print("\n" + result.markdown + "\n")
    for path in result.artifacts:
        print(f"wrote {path}")
    # flushed now: a process forked at Ray's shutdown could otherwise write an unflushed line twice
    print(f"MLflow: parent run {result.parent_run_id} (`python run.py ui`, experiment {config.run.experiment!r})",
          flush=True)
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
    start_ray(args.address, dashboard=args.dashboard)
    workers, pool = test_resources(args)
    report = evaluate_checkpoint(checkpoint, args.data, args.split, clips=args.clips, crops=args.crops,
                                 batch_size=args.batch_size, pool=pool, workers=workers)
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


def add_train(commands) -> None:
    from pipelines.config import add_experiment_flags
    from pipelines.presets import PRESETS

    train = commands.add_parser("train", help="train a model on Ray Train, tracked in MLflow")
    add_experiment_flags(train, sorted(PRESETS))
    add_ray_flags(train)
    train.add_argument("--no-test", action="store_true", help="skip the multi-view test at the end")
    train.add_argument("--verbose", action="store_true",
                       help="Ray's own output on the console too, not only in the log")
    train.set_defaults(func=cmd_train)

    ablation = commands.add_parser(
        "ablation", help="one of the paper's ablation grids on Ray Tune, tracked in MLflow (the main job)",
        description="Every row of a grid is a Ray Tune trial that trains and tests one model on Ray Train. "
                    "The same --name resumes an interrupted sweep.")
    ablation.add_argument("--grid", default="receptive_field",
                          help="a built-in grid (see --list) or a YAML grid file (default: receptive_field)")
    ablation.add_argument("--list", action="store_true", help="print every built-in grid with its rows")
    add_experiment_flags(ablation, sorted(PRESETS), skip=("--model", "--init-2d"))
    ablation.add_argument("--seeds", default="1", metavar="N|auto",
                          help="train every row with N seeds, or 'auto': race seeds until one row is separated "
                               "from the rest or --budget is spent (default: 1)")
    ablation.add_argument("--budget", type=int, metavar="TRIALS",
                          help="with --seeds auto: at most this many trials (default: 3 per row)")
    ablation.add_argument("--max-concurrent", type=int, help="trials at a time (default: what the cluster holds)")
    add_ray_flags(ablation)
    ablation.add_argument("--verbose", action="store_true",
                          help="Ray's own output (and Tune's status tables) on the console too, not only in the log")
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
    add_ray_flags(evaluate)
    add_test_worker_flags(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    predict = commands.add_parser("predict", help="top-5 classes for video files")
    predict.add_argument("--checkpoint", required=True, help="a checkpoint folder, or a run folder (its latest)")
    predict.add_argument("--top", type=int, default=5)
    predict.add_argument("videos", nargs="+")
    predict.set_defaults(func=cmd_predict)
