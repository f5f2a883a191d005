"""``run.py reversal``: can a model tell a clip from the same clip played backwards, and does it?

``--model NAME`` answers for an architecture, exactly: random weights, a random clip, float64
logits of both orders (``smallbig.reversal``; plain PyTorch, no Ray). ``--checkpoint PATH
--data DIR`` answers for a trained model: top-1 on the split's test views forward and
reversed, per class family on the built-in benchmark, and how often the prediction flips
(``pipelines.training.reversal``; scored on workers like ``run.py eval``).
"""
from __future__ import annotations

import argparse
import json
import math

from ..errors import UsageError
from .training import add_ray_flags, add_test_worker_flags, test_resources


def cmd_reversal(args: argparse.Namespace) -> int:
    if args.model:
        return _model_reversal(args)
    if not args.data:
        raise UsageError("reversal --checkpoint needs --data DIR (the dataset the model was trained for)")
    if args.set:
        raise UsageError("reversal --set applies to --model; a checkpoint carries its own model options")
    return _checkpoint_reversal(args)


def _model_reversal(args: argparse.Namespace) -> int:
    from pipelines.config import parse_overrides
    from smallbig.reversal import check_reversal

    check = check_reversal(args.model, frames=args.frames, size=args.size, **parse_overrides(args.set))
    print(json.dumps(check.to_dict()) if args.json else check.summary())
    return 0


def _checkpoint_reversal(args: argparse.Namespace) -> int:
    from pipelines.cluster import start_ray
    from pipelines.training.checkpoints import find_checkpoint
    from pipelines.training.reversal import reversal_report

    checkpoint = find_checkpoint(args.checkpoint)
    start_ray(args.address, dashboard=args.dashboard)
    workers, pool = test_resources(args)
    report = reversal_report(checkpoint, args.data, args.split, clips=args.clips, crops=args.crops,
                             batch_size=args.batch_size, pool=pool, workers=workers)
    print(json.dumps(_json_safe(report.to_dict())) if args.json else report.table())
    return 0


def _json_safe(value):
    """NaN (a split with no readable video) as null: strict JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def add_reversal(commands) -> None:
    from smallbig.reversal import TOLERANCE

    reversal = commands.add_parser(
        "reversal", help="can a model tell a clip from its reversal (--model), and does it (--checkpoint)?",
        description="--model: an exact check in float64 on random weights and a random clip; invariant when "
                    f"every logit agrees within {TOLERANCE:g} (absolute + relative; rounding is ~1e-15). --checkpoint: "
                    "top-1 on the test views forward and reversed, per class family on the built-in benchmark, "
                    "and the share of videos whose prediction flips.")
    which = reversal.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a registered model (see `run.py models`)")
    which.add_argument("--checkpoint", help="a checkpoint folder, or a run folder (its latest)")
    reversal.add_argument("--set", action="append", metavar="KEY=VALUE", help="a model option (with --model)")
    reversal.add_argument("--frames", type=int, default=8, help="clip length of the random input (--model)")
    reversal.add_argument("--size", type=int, default=32, help="frame side of the random input (--model)")
    reversal.add_argument("--data", help="the dataset folder (with --checkpoint)")
    reversal.add_argument("--split", default="test")
    reversal.add_argument("--clips", type=int, help="clips per video (default: the training recipe's)")
    reversal.add_argument("--crops", type=int, choices=[1, 3])
    reversal.add_argument("--batch-size", type=int, default=8)
    add_ray_flags(reversal)
    reversal.add_argument("--json", action="store_true", help="print one JSON object")
    add_test_worker_flags(reversal)
    reversal.set_defaults(func=cmd_reversal)
