"""Per-epoch data health: clips served, videos skipped by reason, and the stop rule.

One tally per dataset, shared by every decode actor (in a Ray actor, :class:`Tallies`, which
holds a run's training and validation tallies together; see ``pipelines.data.dataset``), so
"more than X% of the dataset is unreadable" is judged on the whole dataset rather than on one
actor's share, and the training loop can log an epoch's
summary, including how many videos only PyAV could serve (``served_by_pyav``). The tally
also hands out epochs: a video's k-th visit after :meth:`DataHealth.rewind`
belongs to epoch ``start + k``, which lets one Ray Dataset re-sample clips on every pass
while a given (epoch, video) always yields the same clip, whichever actor decodes it.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

log = logging.getLogger(__name__)


class TooManyBadVideos(UsageError):
    """More than the allowed fraction of a dataset could not be read; lists the first offenders.

    The data's fault, not the machine's: a retry would meet the same files, so a training run
    stops at once (``pipelines.ray_private.DataErrorsNotRetried``) and says this, without a traceback.
    """


def data_stop_in(error: BaseException) -> TooManyBadVideos | None:
    """The :class:`TooManyBadVideos` behind ``error``, if any: Ray Data wraps what a decode actor
    raised (``UserCodeException`` from a ``RayTaskError``), and the wrapping hides its type from
    whoever decides on a retry, in another process where the chain is gone."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, TooManyBadVideos):
            original = getattr(error, "cause", None)  # a RayTaskError carries the actor's own exception
            return original if isinstance(original, TooManyBadVideos) else TooManyBadVideos(*error.args)
        seen.add(id(error))
        error = error.__cause__ or getattr(error, "cause", None) or error.__context__
    return None


class DataHealth:
    """Counts per epoch; plain Python so it runs locally or as ``ray.remote(DataHealth)``."""

    def __init__(self, dataset_size: int, max_bad_fraction: float = 0.05, start_epoch: int = 0,
                 name: str = "data", max_offenders: int = 10) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise UsageError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.dataset_size, self.max_bad_fraction = int(dataset_size), float(max_bad_fraction)
        self.name, self.max_offenders = name, max_offenders
        self.start_epoch = int(start_epoch)
        self.visits: Counter[int] = Counter()
        self.clips: Counter[int] = Counter()  # epoch -> clips served
        self.served: dict[int, Counter[int]] = defaultdict(Counter)  # epoch -> video -> times
        self.by_pyav: dict[int, set[int]] = defaultdict(set)  # epoch -> videos PyAV decoded
        self.bad: dict[int, dict[int, tuple[str, str, str]]] = defaultdict(dict)  # epoch -> video -> why
        self.stopped: str | None = None
        self.starts = 0  # decode workers (actors) that started reporting here

    def started(self) -> int:
        """Count one more decode worker; returns how many have started (once per run is the aim)."""
        self.starts += 1
        return self.starts

    # -- epochs

    def claim(self, videos: list[int]) -> list[int]:
        """The epoch of each video's next visit (and count the visit)."""
        epochs = []
        for video in videos:
            epochs.append(self.start_epoch + self.visits[video])
            self.visits[video] += 1
        return epochs

    def rewind(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (a resumed run calls this before iterating)."""
        self.start_epoch = int(epoch)
        self.visits.clear()
        self.stopped = None

    # -- counting

    def record(self, served: list[tuple], skipped: list[tuple[int, int, str, str, str]]) -> str | None:
        """Add ``(epoch, video, clips[, decoder])`` served and ``(epoch, video, path, reason, detail)``
        skipped; a served video without ``decoder`` was decoded by decord.

        Returns a message when the run must stop (too many unreadable videos), else None.
        """
        for epoch, video, clips, *decoder in served:
            self.served[epoch][video] += 1
            self.clips[epoch] += clips
            if decoder and decoder[0] == "pyav":
                self.by_pyav[epoch].add(video)
        for epoch, video, path, reason, detail in skipped:
            if video not in self.bad[epoch]:
                self.bad[epoch][video] = (path, reason, detail)
            limit = self.max_bad_fraction * self.dataset_size
            if self.stopped is None and len(self.bad[epoch]) > limit:
                self.stopped = self._stop_message(epoch)
                log.error("%s", self.stopped)
        return self.stopped

    def _stop_message(self, epoch: int) -> str:
        bad = self.bad[epoch]
        lines = [f"{self.name}: {len(bad)} of {self.dataset_size} videos unreadable in epoch {epoch}, "
                 f"more than the allowed {self.max_bad_fraction:.1%}; first offenders:"]
        for path, reason, detail in list(bad.values())[: self.max_offenders]:
            lines.append(f"  {path}: {reason}" + (f" ({detail})" if detail else ""))
        return "\n".join(lines)

    def summary(self, epoch: int | None = None) -> dict:
        """One epoch's figures (the latest seen when ``epoch`` is None), JSON-friendly for logging:
        ``served_by_pyav`` counts the videos served that decord could not read (exactly)."""
        epochs = sorted(set(self.served) | set(self.bad))
        if epoch is None:
            if not epochs:
                return {"epoch": None, "clips_served": 0, "videos_served": 0, "videos_served_twice": 0,
                        "served_by_pyav": 0, "videos_skipped": 0, "skipped_by_reason": {}, "offenders": []}
            epoch = epochs[-1]
        served, bad = self.served.get(epoch, Counter()), self.bad.get(epoch, {})
        return {
            "epoch": epoch,
            "clips_served": self.clips.get(epoch, 0),
            "videos_served": len(served),
            "videos_served_twice": sum(1 for n in served.values() if n > 1),
            "served_by_pyav": len(self.by_pyav.get(epoch, ())),
            "videos_skipped": len(bad),
            "skipped_by_reason": dict(Counter(reason for _, reason, _ in bad.values())),
            "offenders": [{"path": p, "reason": r, "detail": d} for p, r, d in bad.values()],
        }

    def started_count(self) -> int:
        return self.starts

    def skipped(self) -> list[dict]:
        """Every video skipped so far, once, with the first epoch it was skipped in (what a run
        logs as ``data/skipped.csv``)."""
        first: dict[str, dict] = {}
        for epoch in sorted(self.bad):
            for path, reason, detail in self.bad[epoch].values():
                first.setdefault(path, {"path": path, "reason": reason, "detail": detail, "first_epoch": epoch})
        return list(first.values())

    def epochs(self) -> list[int]:
        return sorted(set(self.served) | set(self.bad))


class Tallies:
    """Several datasets' :class:`DataHealth`, by key, in one place: a run's training and validation
    sets share one Ray actor (one process per run, not one per dataset)."""

    def __init__(self, datasets: dict[str, tuple[int, str]], max_bad_fraction: float = 0.05,
                 start_epoch: int = 0) -> None:
        self.tallies = {key: DataHealth(size, max_bad_fraction, start_epoch, name=name)
                        for key, (size, name) in datasets.items()}

    # One method per question, each naming the dataset: what a RemoteTally forwards.
    def started(self, key: str) -> int:
        return self.tallies[key].started()

    def started_count(self, key: str) -> int:
        return self.tallies[key].started_count()

    def claim(self, key: str, videos: list[int]) -> list[int]:
        return self.tallies[key].claim(videos)

    def record(self, key: str, served: list, skipped: list) -> str | None:
        return self.tallies[key].record(served, skipped)

    def summary(self, key: str, epoch: int | None = None) -> dict:
        return self.tallies[key].summary(epoch)

    def rewind(self, key: str, epoch: int) -> None:
        self.tallies[key].rewind(epoch)

    def skipped(self, key: str) -> list[dict]:
        return self.tallies[key].skipped()


@dataclass(frozen=True)
class RemoteTally:
    """A handle on one dataset's :class:`DataHealth` in a :class:`Tallies` Ray actor: what the driver,
    a training worker, the decode actors and the tests ask of it. It answers the questions a
    decode actor asks a local :class:`DataHealth` (``started``, ``claim``, ``record``) the same way."""

    actor: Any
    key: str

    def started(self) -> int:
        """Count one more decode worker (see :meth:`DataHealth.started`)."""
        return _wait(self.actor.started.remote(self.key))

    def claim(self, videos: list[int]) -> list[int]:
        """The epoch of each video's next visit (see :meth:`DataHealth.claim`)."""
        return _wait(self.actor.claim.remote(self.key, videos))

    def summary(self, epoch: int | None = None) -> dict:
        """Clips served and videos skipped (by reason) in ``epoch`` (default: the latest)."""
        return _wait(self.actor.summary.remote(self.key, epoch))

    def rewind(self, epoch: int) -> None:
        """Make the next pass over the dataset epoch ``epoch`` (a resumed run calls this once)."""
        _wait(self.actor.rewind.remote(self.key, epoch))

    def record(self, served: list, skipped: list) -> None:
        """Report what a worker served and skipped (see :meth:`DataHealth.record`); too many bad
        videos raise :class:`TooManyBadVideos` here, in the worker that found them."""
        stop = _wait(self.actor.record.remote(self.key, served, skipped))
        if stop:
            raise TooManyBadVideos(stop)

    def starts(self) -> int:
        """How many decode workers have started for this dataset."""
        return _wait(self.actor.started_count.remote(self.key))

    def skipped(self) -> list[dict]:
        """Every video skipped so far and the first epoch it was (see :meth:`DataHealth.skipped`)."""
        return _wait(self.actor.skipped.remote(self.key))


def _wait(reference):
    import ray

    return ray.get(reference)


def remote_tallies(datasets: dict[str, tuple[int, str]], max_bad_fraction: float = 0.05,
                   start_epoch: int = 0) -> dict[str, RemoteTally]:
    """A tally per dataset (key -> (size, name)), all in one :class:`Tallies` actor on this process's
    node (where Ray Data also places its split coordinator): a zero-CPU actor may otherwise land
    on any node, and losing that node would fail the run with it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0, scheduling_strategy=here)(Tallies).remote(datasets, max_bad_fraction, start_epoch)
    return {key: RemoteTally(actor, key) for key in datasets}


def remote_tally(dataset_size: int, max_bad_fraction: float = 0.05, start_epoch: int = 0,
                 name: str = "data") -> RemoteTally:
    """One dataset's tally in an actor of its own (see :func:`remote_tallies`)."""
    return remote_tallies({name: (dataset_size, name)}, max_bad_fraction, start_epoch)[name]
