"""In the training worker: batches of uint8 clips from a Ray Dataset shard -> normalised float tensors.

Clips cross the object store as uint8 ``(N, T, H, W, 3)`` (a quarter of float's bytes) and
become the model's ``(N, 3, T, H, W)`` float input only here, on the worker's device.
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple, Sequence

# ImageNet statistics in [0, 1] units: the inflated 2D weights expect them.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


def to_batch(samples: Sequence, device=None, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> ClipBatch:
    """A :class:`ClipBatch` from decoded samples (anything with ``clip``, ``label`` and ``video``)."""
    import numpy as np
    import torch

    labels = torch.as_tensor([s.label for s in samples], dtype=torch.int64)
    videos = torch.as_tensor([s.video for s in samples], dtype=torch.int64)
    if device is not None:
        labels = labels.to(device)
    return ClipBatch(to_model_input(np.stack([s.clip for s in samples]), mean, std, device), labels, videos,
                     torch.zeros_like(videos))
