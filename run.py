#!/usr/bin/env python
"""Command line for SmallBigNet research: models, data, training, sweeps.

    python run.py ablation --grid receptive_field   # the paper's Table 4 on Ray Tune (the main job)
    python run.py ablation --list             # every grid and its rows
    python run.py train --model smallbig_r23_full --preset laptop --data synthetic --name first
    python run.py eval --checkpoint runs/first --data DIR       # a run folder: its latest checkpoint
    python run.py predict --checkpoint runs/first video.mp4
    python run.py reversal --model smallbig_r23_full            # can it tell a clip from its reversal?
    python run.py reversal --checkpoint runs/first --data DIR   # does it? top-1 forward vs reversed
    python run.py flops --model smallbig_r23_full --frames 8 --size 224 --classes 400
    python run.py models                      # every registered model
    python run.py data synth --out data/synth # the built-in temporal benchmark (dataset folder)
    python run.py data import kinetics --csv train.csv --csv validate.csv --videos K400 --out data/k400
    python run.py ui                          # the MLflow UI for the local store
    python run.py bench train|model|data      # speed against baselines measured in the same run
"""
from __future__ import annotations

import argparse
import logging
import sys

from pipelines.cli.data import add_data
from pipelines.cli.models import add_flops
from pipelines.cli.reversal import add_reversal
from pipelines.cli.tools import add_tools
from pipelines.cli.training import add_checkpoint_commands, add_train, experiment_from_args
from pipelines.errors import UsageError
from smallbig.errors import ModelError

__all__ = ["build_parser", "experiment_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_flops, add_train, add_checkpoint_commands, add_reversal, add_data, add_tools):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (UsageError, ModelError) as error:  # what was asked cannot be done: one line; a bug keeps its traceback
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
