"""The private Ray APIs this project reaches into, in one place, each with why (Ray 2.60).

Each is a single line that a Ray upgrade may break; keeping them here means one file to check.
"""
from __future__ import annotations


def set_restored_run_config(tuner, *, verbose, callbacks: list) -> None:
    """Give a restored Tuner this invocation's console (verbosity and callbacks).

    ``Tuner.restore`` brings back the run config as it was saved, callbacks included, and has
    no public way to replace them; the callbacks of the invocation that was stopped would
    otherwise print for this one.
    """
    run_config = tuner._local_tuner.get_run_config()
    run_config.verbose, run_config.callbacks = verbose, callbacks
