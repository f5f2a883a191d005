"""Commands around the work: ``ui`` (MLflow) and ``bench``."""
from __future__ import annotations

import argparse
import os
import sys

from pipelines.config import RunSection


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from pipelines.tracking import tracking_uri

    uri = tracking_uri(args.storage)
    address = f"http://{args.host}:{args.port}"
    print(f"MLflow UI for {uri}\n  {address}", flush=True)
    # MLflow 3 opens an experiment on its GenAI overview; these open each experiment's training runs
    for experiment, page in training_runs_pages(uri).items():
        print(f"  {address}/{page}  ({experiment}: expand a sweep's parent run for its rows)", flush=True)
    # MLflow 3's job runner (background workers for GenAI jobs) is not needed to review training
    # runs; without it the server answered in 50 s instead of 136 s on a loaded 2-core machine.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    return subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                            "--host", args.host, "--port", str(args.port)], env=env)


def training_runs_pages(uri: str) -> dict[str, str]:
    """Experiment name -> the UI's page of its training runs (``#/experiments/ID/runs``), for every
    experiment in the store with a run: a sweep under ``--set run.experiment=NAME`` is listed too."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        experiments = client.search_experiments()
        return {e.name: f"#/experiments/{e.experiment_id}/runs" for e in experiments
                if client.search_runs([e.experiment_id], max_results=1)}
    except MlflowException:  # a store this MLflow cannot read: the server will say why
        return {}


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "model":
        from benchmarks.model_step import main as bench_main
    elif args.what == "data":
        from benchmarks.data_loading import main as bench_main
    elif args.what == "train":
        from benchmarks.training import main as bench_main
    elif args.what == "test":
        from benchmarks.test_phase import main as bench_main
    elif args.what == "scale":
        from benchmarks.scale import main as bench_main
    elif args.what == "decode":
        from benchmarks.decode import main as bench_main
    else:
        raise SystemExit(f"unknown benchmark {args.what!r}")
    return bench_main(args.rest + (["--json"] if args.json else []))


def add_tools(commands) -> None:
    ui = commands.add_parser("ui", help="start the MLflow UI for the local store")
    ui.add_argument("--storage", default=RunSection.storage, help="the runs' storage (default: %(default)s)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    bench = commands.add_parser("bench", help="speed benchmarks (see benchmarks/)")
    bench.add_argument("what", choices=["model", "data", "train", "test", "scale", "decode"])
    bench.add_argument("--json", action="store_true")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options for the benchmark")
    bench.set_defaults(func=cmd_bench)
