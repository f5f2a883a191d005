"""The Ray Data side: (path, label) rows -> decode actors -> uint8 clips -> float clips in a worker.

Driver side::

    videos = read_dataset_folder(root, "train")
    clips = build_dataset(videos, spec, "train", pool=fit_decode_pool(train_workers=2, cpus_per_worker=0.5))
    TorchTrainer(..., datasets={"train": clips.dataset}, train_loop_config={"health": clips.health})

Worker side::

    shard = ray.train.get_dataset_shard("train")
    for batch in iter_clip_batches(shard, batch_size=8):
        loss = criterion(model(batch.clips), batch.labels)

Decoding runs on a pool of CPU actors (``compute=ActorPoolStrategy``), one decord thread
each; frames stay uint8 until :func:`to_model_input` in the training worker. The pool must
fit next to the training workers or Ray Data never starts it (ARCHITECTURE.md, section 4):
:func:`fit_decode_pool` derives it from the cluster's CPUs. On a cluster whose CPU nodes carry
the label :data:`DECODE_LABEL` (``cluster/*.yaml``), the actors are pinned to those nodes and
the training workers kept off them (:data:`TRAIN_LABEL_SELECTOR`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from .annotations import VideoList, VideoRecord
from .decoding import DecodeClips
from .health import DataHealth
from .sampling import MODES, ClipSpec

# ImageNet statistics in [0, 1] units: the inflated 2D weights expect them.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Node label of the CPU nodes meant for decoding (set on the CPU worker types in cluster/).
DECODE_LABEL = {"smallbig/role": "decode"}
# Where training workers go when the cluster has decode nodes: anywhere else.
TRAIN_LABEL_SELECTOR = {"smallbig/role": "!decode"}


@dataclass(frozen=True)
class DecodePool:
    """Decode actors: CPUs each, pool bounds, videos per ``map_batches`` call, nodes they may use."""

    num_cpus: float = 1.0
    min_actors: int = 1
    max_actors: int = 2
    batch_size: int = 8  # videos per UDF call: fewer calls for small clips, blocks still < 20 MB at 224 px
    label_selector: Mapping[str, str] | None = None  # Ray node labels the actors need; None: any node

    def __post_init__(self) -> None:
        if self.num_cpus <= 0 or self.min_actors < 1 or self.max_actors < self.min_actors or self.batch_size < 1:
            raise ValueError(f"invalid decode pool {self}")


def decode_node_cpus() -> float:
    """CPUs of the live nodes labelled :data:`DECODE_LABEL`; 0 on one machine or without Ray."""
    import ray

    if not ray.is_initialized():
        return 0.0
    (key, value), = DECODE_LABEL.items()
    return float(sum(node["Resources"].get("CPU", 0) for node in ray.nodes()
                     if node.get("Alive") and node.get("Labels", {}).get(key) == value))


def fit_decode_pool(train_workers: int = 0, cpus_per_worker: float = 1.0, cluster_cpus: float | None = None,
                    batch_size: int = 8, decode_cpus: float | None = None) -> DecodePool:
    """A decode pool that fits in the CPUs the training workers leave free.

    Whole-CPU actors when at least one CPU is free (up to one per free CPU); otherwise two
    actors sharing what is left. ``cluster_cpus`` defaults to ``ray.cluster_resources()``.
    Raises when nothing is left: the run would hang waiting for the pool.

    On a cluster with nodes labelled for decoding (``decode_cpus``, default: asked of Ray),
    the actors are pinned there, one CPU each, up to one per CPU of those nodes; the
    training workers then run elsewhere (:data:`TRAIN_LABEL_SELECTOR`), so they do not count.
    """
    if decode_cpus is None:
        decode_cpus = decode_node_cpus()
    if decode_cpus >= 1:
        return DecodePool(1.0, 1, int(math.floor(decode_cpus + 1e-9)), batch_size, dict(DECODE_LABEL))
    if cluster_cpus is None:
        import ray

        cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    free = cluster_cpus - train_workers * cpus_per_worker
    if free >= 1:
        return DecodePool(1.0, 1, int(math.floor(free + 1e-9)), batch_size)
    if free > 0:
        return DecodePool(round(free / 2, 3), 1, 2, batch_size)
    raise ValueError(f"no CPU left for decoding: {cluster_cpus:g} CPUs, {train_workers} training "
                     f"workers x {cpus_per_worker:g}; give the workers fewer CPUs")


@dataclass
class ClipDataset:
    """A Ray Dataset of clips plus the health tally its decode actors report to."""

    dataset: Any  # ray.data.Dataset
    health: Any  # ray actor handle of DataHealth
    videos: VideoList
    spec: ClipSpec
    mode: str

    def summary(self, epoch: int | None = None) -> dict:
        """Clips served and videos skipped (by reason) in ``epoch`` (default: the latest)."""
        import ray

        return ray.get(self.health.summary.remote(epoch))

    def rewind(self, epoch: int) -> None:
        """Make the next pass over the dataset epoch ``epoch`` (call once when resuming)."""
        import ray

        ray.get(self.health.rewind.remote(epoch))


def video_rows(videos: VideoList | Sequence[VideoRecord]) -> list[dict]:
    """The dataset's rows: ``path``, ``label`` and ``video`` (position in the list)."""
    records = videos.records if isinstance(videos, VideoList) else videos
    return [{"path": r.path, "label": int(r.label), "video": i} for i, r in enumerate(records)]


def build_dataset(videos: VideoList, spec: ClipSpec, mode: str, *, pool: DecodePool | None = None,
                  epoch: int | None = None, start_epoch: int = 0, max_bad_fraction: float = 0.05,
                  shuffle: bool | None = None, health: Any = None) -> ClipDataset:
    """A Ray Dataset yielding clips of ``videos`` in ``mode`` (train, eval or test).

    - ``epoch=None``: every pass over the dataset is the next epoch (from ``start_epoch``),
      which is what a Ray Train loop needs; clips re-sample each pass and a given
      (epoch, video) always yields the same clip. An int fixes the epoch (the per-epoch
      dataset of :func:`epoch_dataset`). Eval and test clips do not depend on the epoch.
    - ``shuffle`` (default: only in training) permutes the videos once and the order of
      blocks of ``pool.batch_size`` videos on every pass; mix further with
      ``local_shuffle_buffer_size`` in :func:`iter_clip_batches`.
    - More than ``max_bad_fraction`` of the videos unreadable in one epoch stops the run
      with :class:`~pipelines.health.TooManyBadVideos`; fewer are skipped and counted.
    """
    import ray

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {MODES}")
    if len(videos) == 0:
        raise ValueError(f"{videos.source or 'dataset'}: no videos")
    pool = pool or fit_decode_pool()
    if health is None:
        # On this process's node (as Ray Data places its split coordinator): a zero-CPU actor
        # may otherwise land on any node, and losing that node would fail the run with it.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        health = ray.remote(num_cpus=0, scheduling_strategy=here)(DataHealth).remote(
            len(videos), max_bad_fraction, start_epoch, name=videos.source or mode)
    rows = video_rows(videos)
    shuffle = mode == "train" if shuffle is None else shuffle
    if shuffle:  # classes mixed within blocks; block order then changes every pass
        rows = [rows[i] for i in np.random.default_rng(spec.seed).permutation(len(rows))]
    blocks = max(1, min(len(rows), math.ceil(len(rows) / pool.batch_size)))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    if shuffle:
        # Not random_shuffle(): its CPU tasks starve once the train workers and the decode
        # pool hold every CPU (the run hangs); a block permutation needs no tasks.
        dataset = dataset.randomize_block_order()
    dataset = dataset.map_batches(
        DecodeClips,
        fn_constructor_kwargs={"spec": spec, "mode": mode, "health": health, "epoch": epoch},
        batch_size=pool.batch_size,
        batch_format="numpy",
        num_cpus=pool.num_cpus,
        label_selector=dict(pool.label_selector) if pool.label_selector else None,
        compute=ray.data.ActorPoolStrategy(min_size=pool.min_actors, max_size=pool.max_actors),
    )
    return ClipDataset(dataset, health, videos, spec, mode)


def epoch_dataset(videos: VideoList, spec: ClipSpec, mode: str, epoch: int, **options) -> ClipDataset:
    """The dataset of one fixed epoch (a driver-side loop, evaluation, or re-running one epoch)."""
    return build_dataset(videos, spec, mode, epoch=epoch, **options)


# ---------------------------------------------------------------- in the training worker


class ClipBatch(NamedTuple):
    clips: Any  # torch.Tensor float (N, 3, T, H, W), normalised
    labels: Any  # torch.Tensor int64 (N,)
    videos: Any  # torch.Tensor int64 (N,): row of the annotation list
    views: Any  # torch.Tensor int64 (N,): view number within the video


def to_model_input(clips, mean: Sequence[float] = MEAN, std: Sequence[float] = STD, device=None,
                   dtype=None):
    """uint8 ``(N, T, H, W, 3)`` -> normalised float ``(N, 3, T, H, W)`` (on ``device``).

    Moves uint8 to the device first (a quarter of the bytes), then converts there.
    """
    import torch

    clips = torch.as_tensor(clips)
    if device is not None:
        clips = clips.to(device, non_blocking=True)
    dtype = dtype or torch.float32
    x = clips.permute(0, 4, 1, 2, 3).to(dtype).div_(255.0)
    m = torch.as_tensor(mean, dtype=dtype, device=x.device).view(1, 3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=dtype, device=x.device).view(1, 3, 1, 1, 1)
    return x.sub_(m).div_(s).contiguous()


def iter_clip_batches(shard, batch_size: int, *, mean: Sequence[float] = MEAN, std: Sequence[float] = STD,
                      device=None, drop_last: bool = False, local_shuffle_buffer_size: int | None = None,
                      prefetch_batches: int = 2) -> Iterator[ClipBatch]:
    """Batches of model-ready clips from ``ray.train.get_dataset_shard(...)`` (or any Dataset).

    Each call is one pass (one epoch) over the shard.
    """
    import torch

    for batch in shard.iter_torch_batches(batch_size=batch_size, drop_last=drop_last, device="cpu",
                                          local_shuffle_buffer_size=local_shuffle_buffer_size,
                                          prefetch_batches=prefetch_batches):
        labels = batch["label"].to(torch.int64)
        if device is not None:
            labels = labels.to(device)
        yield ClipBatch(to_model_input(batch["clip"], mean, std, device), labels, batch["video"], batch["view"])


def average_scores_by_video(videos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean score over each video's views (the test protocol): returns (video ids, scores)."""
    videos = np.asarray(videos)
    scores = np.asarray(scores, dtype=np.float64)
    ids, inverse = np.unique(videos, return_inverse=True)
    sums = np.zeros((len(ids),) + scores.shape[1:])
    np.add.at(sums, inverse, scores)
    counts = np.bincount(inverse, minlength=len(ids)).reshape((-1,) + (1,) * (scores.ndim - 1))
    return ids, sums / counts
