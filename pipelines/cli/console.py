"""What a long command shows a person, and where everything else goes: its log file.

``train`` and ``ablation`` call :func:`setup_console` before Ray starts. Our own lines (the
``pipelines`` loggers, in this process and, through ``cluster.route_worker_output``, in every
Ray worker) reach the console: INFO on stdout, warnings and errors on stderr, written through
tqdm so the progress bars (``training.reporting.ProgressBars``, on stderr when it is a terminal)
are redrawn below them. Ray's own output (its workers' lines, Ray Data's execution plans and
progress bars, Tune's status tables, MLflow's store messages, Python warnings) goes to the log
file only, with errors from anything still shown. ``--verbose`` leaves Ray's console output as
Ray makes it, and the log file still gets Ray's and the libraries' log records and the workers' lines.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

# Loggers that print to the console on their own (a handler of their own, not propagating); quiet,
# they are given to the log file. Ray Data adds its handlers when imported, so it is imported first.
LIBRARY_LOGGERS = ("ray", "ray.data", "mlflow", "alembic", "huey", "sqlalchemy.engine")
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConsoleHandler(logging.Handler):
    """INFO on stdout, warnings and errors on stderr, through ``tqdm.write`` (bars are redrawn below)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            tqdm.write(self.format(record), file=stream)
            stream.flush()
        except Exception:
            self.handleError(record)


class Forward(logging.Handler):
    """Hands records to another handler (``ray.init`` sets its own format on the "ray" logger's handlers)."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


def shown(record: logging.LogRecord, verbose: bool) -> bool:
    """Whether a record reaches the console: ours and every error; with ``verbose`` everything but
    what Ray and the libraries print themselves then."""
    from pipelines.cluster import RAY_WORKERS_LOGGER

    if verbose:
        name = record.name
        return name != RAY_WORKERS_LOGGER and not any(name == n or name.startswith(n + ".") for n in LIBRARY_LOGGERS)
    ours = record.name in ("pipelines", "__main__") or record.name.startswith("pipelines.")
    return ours or record.levelno >= logging.ERROR


def log_path(storage: str, name: str) -> Path:
    """``<storage>/logs/<name>.log`` (the local run folder when storage is a URI), appended to by reruns."""
    from pipelines import storage as storage_rules

    folder = storage_rules.local_folder(storage) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.log"


def setup_console(log_file: Path, verbose: bool = False) -> Path:
    """This process's logging for a long command: the console as above, every record in ``log_file``."""
    import mlflow  # noqa: F401  (both set up their loggers when imported)
    import ray.data  # noqa: F401

    from pipelines.cluster import PROGRESS_LOGGER
    from pipelines.training.reporting import ProgressBars

    root = logging.getLogger()
    for handler in root.handlers[:]:  # run.py's basicConfig
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    console = ConsoleHandler()
    for handler in (to_file, console):
        handler.setLevel(logging.INFO)  # Ray Data's logger passes DEBUG records on
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(lambda record: shown(record, verbose))
    root.addHandler(to_file)
    root.addHandler(console)
    progress = logging.getLogger(PROGRESS_LOGGER)
    progress.propagate = False  # JSON for the bars, not lines
    progress.handlers = [h for h in progress.handlers if not isinstance(h, ProgressBars)] + [ProgressBars()]
    to_file.stream.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')}  {' '.join(sys.argv)}\n")
    if verbose:  # the libraries print as they do; their loggers (none propagates) write to the file too
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addHandler(Forward(to_file))
    else:
        quiet_libraries()
    return log_file


def quiet_libraries() -> None:
    """Ray's, Ray Data's and MLflow's console handlers removed (their records reach the log file
    through the root logger); Ray Data's progress bars, Tune's header and MLflow's download bars
    off; Python warnings logged."""
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")  # start_ray passes it to the workers
    # Tune's newer output engine prints its experiment header even at verbose=0; the older one, nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    names = [n for n in logging.root.manager.loggerDict if n.startswith("ray.")]
    for name in (*LIBRARY_LOGGERS, *names):
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
