"""Named points where a run can be paused from outside, so that fault tests kill it at a known
phase instead of racing it with sleeps.

With the environment variable :data:`PAUSE_DIR_ENV` naming a folder, a run reaching point
``P`` appends a line to the file ``<run>.<P>`` there (so a test counts how often the point was
reached: how many times epoch 2 was trained, say), then waits while ``<run>.<P>.hold`` exists.
The after-epoch points also wait while a file ``hold`` exists (every run, every epoch).
Unset, which it always is outside tests, a point costs one dictionary lookup.

The points, in the order a run reaches them:

==========================  ==========================================================
``start``                   a sweep's trial driver, before it starts its training run
``epoch<N>.train``          rank 0, after the first step of epoch N (mid-epoch)
``epoch<N>.val``            rank 0, as validation of epoch N begins
``epoch<N>.registered``     the controller, once Ray registered epoch N's checkpoint and
                            before its metrics reach MLflow
``epoch<N>``                every rank, after epoch N's report was registered
``test``                    the run's driver, as the multi-view test begins
==========================  ==========================================================
"""
from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_DIR_ENV = "PIPELINES_HOLD_DIR"
EVERY_EPOCH_HOLD = "hold"


def pause_point(run: str, point: str, *, mark: bool = True, every_epoch: bool = False) -> None:
    """Mark that ``run`` reached ``point`` (unless ``mark`` is false: the other ranks of an
    after-epoch point), then wait while it is held; ``every_epoch`` also honours the ``hold`` file."""
    folder = os.environ.get(PAUSE_DIR_ENV)
    if not folder:
        return
    if mark:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder, f"{run}.{point}"), "a") as arrivals:
            arrivals.write(f"{os.getpid()}\n")
    held = [Path(folder, f"{run}.{point}.hold")] + ([Path(folder, EVERY_EPOCH_HOLD)] if every_epoch else [])
    while any(path.exists() for path in held):
        time.sleep(0.1)
