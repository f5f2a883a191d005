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


# -- the driver's console: what Ray forwards from its workers (see pipelines.cluster.route_worker_output)

def console_printer():
    """Ray's own printer of forwarded worker lines, as ``log_to_driver`` prints them (``--verbose``).

    ``print_to_stdstream`` and the prefix rule are private; there is no public way to print a
    batch of forwarded lines as Ray would.
    """
    import functools

    from ray._private import worker

    ignore_prefix = worker._should_ignore_worker_log_prefix(worker.global_worker)
    return functools.partial(worker.print_to_stdstream, ignore_prefix=ignore_prefix)


def replace_worker_log_handler(handler) -> bool:
    """Route the worker lines Ray forwards to the driver through ``handler(data)``; False when
    ``log_to_driver`` is off (nothing is forwarded).

    Ray's driver-side dispatcher has no public API. The handler keeps Ray's name,
    ``ray_print_logs``, so ``ray.shutdown()`` removes it as it removes Ray's own.
    """
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    if not any(name == "ray_print_logs" for name, _ in dispatcher.handlers):
        return False
    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("ray_print_logs", handler)
    return True


def replace_driver_printer(handler) -> None:
    """Send what the raylet pushes straight to the driver's console (worker-pool warnings, dead
    workers) through ``handler(data)`` as well.

    Ray calls the module-level ``print_to_stdstream`` for those, not the dispatcher, so the
    function itself is replaced; the only way to keep them off the console short of
    ``log_to_driver=False``, which would hide our workers' lines too.
    """
    from ray._private import worker

    worker.print_to_stdstream = lambda data, ignore_prefix=False: handler(data)


def autoscaler_events(lines: list[str]) -> list[str]:
    """The autoscaler's events among its forwarded lines, without its periodic status (Ray's filter)."""
    from ray._private.worker import filter_autoscaler_events

    return list(filter_autoscaler_events(lines))


# -- Ray Train's retry decision: a data error is not retried like a lost worker

def base_errors(training_failed_error) -> list[BaseException]:
    """The exceptions the workers raised, unwrapped from Ray Train's traceback carrier (its
    ``UserExceptionWithTraceback`` keeps the original in ``_base_exc``, with no public accessor)."""
    failures = getattr(training_failed_error, "worker_failures", None) or {}
    return [getattr(error, "_base_exc", error) for error in failures.values()]


def trainer_not_retrying(trainer, errors: tuple[type[BaseException], ...]):
    """``trainer`` with a failure policy that raises at once when a worker failed with one of
    ``errors`` and otherwise decides as Ray's default policy does (``max_failures`` retries).

    Ray Train 2.60 builds its policy from ``FailureConfig`` alone, with no public way to tell a
    lost worker (worth a retry from the last checkpoint) from an error that every retry would
    meet again, such as too many unreadable videos. The trainer's private factory is replaced
    for this trainer's ``fit`` only.
    """
    from ray.train.v2._internal.execution.failure_handling import DefaultFailurePolicy, FailureDecision
    from ray.train.v2.api import data_parallel_trainer

    class NotRetrying(DefaultFailurePolicy):
        def make_decision(self, training_failed_error):
            if any(isinstance(error, errors) for error in base_errors(training_failed_error)):
                return FailureDecision.RAISE
            return super().make_decision(training_failed_error)

    fit = trainer.fit

    def fit_not_retrying():
        default = data_parallel_trainer.create_failure_policy
        data_parallel_trainer.create_failure_policy = NotRetrying
        try:
            return fit()
        finally:
            data_parallel_trainer.create_failure_policy = default

    trainer.fit = fit_not_retrying
    return trainer
