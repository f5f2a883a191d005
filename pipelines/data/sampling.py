"""Clip sampling as in the papers' recipes: which frames, which crop (``crops``), whether to flip.

numpy only, no decoding and no Ray, so every rule here is testable on numbers alone:

- temporal: *dense* (T frames at stride s from a window of T*s, the stride shrinking for
  short videos; Kinetics 8x8) and *segment* (T equal segments, one frame each: random in
  training, the middle in evaluation; TSN / Something-Something);
- spatial (``pipelines.data.crops``): a random scale, crop and flip in training, the centre
  crop in evaluation, K uniformly spaced clips x 3 crops in the test protocol;
- every random choice comes from :func:`clip_rng`, seeded by (seed, epoch, video key), so a
  run is reproducible and a resumed run sees the same clips whatever the worker order. The
  key is the video's path *within its dataset* (``VideoRecord.key``), never where the
  dataset folder lives: a clone in another folder trains on the same clips.

A *view* is one clip of one video: frame indices plus a :class:`Crop`. :func:`plan_views`
returns one view in train/eval mode and K x 3 in test mode.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import UsageError
from .crops import Crop, center_crop, three_crops, train_crop

MODES = ("train", "eval", "test")
SAMPLERS = ("dense", "segment")


class TooShortError(ValueError):
    """The video has fewer frames than the clip needs (the decoder skips and counts it)."""


# ---------------------------------------------------------------- seeding


def video_key(key: str) -> int:
    """A stable 63-bit number for a video's key (Python's ``hash`` changes between processes)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def clip_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """The generator for one video in one epoch: same (seed, epoch, key) -> same clip.

    ``key`` names the video within its dataset (its path relative to the dataset folder,
    ``VideoRecord.key``), so moving or cloning the folder changes no clip.
    """
    return np.random.default_rng([int(seed), int(epoch), video_key(key)])


# ---------------------------------------------------------------- temporal


def _check_length(num_frames: int, frames: int) -> None:
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if num_frames < frames:
        raise TooShortError(f"{num_frames} frames, the clip needs at least {frames}")


def dense_stride(num_frames: int, frames: int, stride: int) -> int:
    """The stride actually used: ``stride`` if the T*s window fits, else the largest that does."""
    _check_length(num_frames, frames)
    if num_frames >= frames * stride:
        return stride
    return max(1, num_frames // frames)


def dense_indices(num_frames: int, frames: int, stride: int,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """T frames ``stride`` apart; window start random with ``rng``, centred without.

    A video shorter than the T*s window gets a smaller stride (never a repeated frame).
    """
    step = dense_stride(num_frames, frames, stride)
    span = (frames - 1) * step + 1
    slack = num_frames - span
    start = int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
    return start + step * np.arange(frames, dtype=np.int64)


def dense_test_indices(num_frames: int, frames: int, stride: int, clips: int) -> list[np.ndarray]:
    """K dense clips with uniformly spaced starts from the first to the last possible window."""
    step = dense_stride(num_frames, frames, stride)
    span = (frames - 1) * step + 1
    slack = num_frames - span
    if clips == 1:
        starts = [slack // 2]
    else:
        starts = np.round(np.linspace(0, slack, clips)).astype(np.int64).tolist()
    return [start + step * np.arange(frames, dtype=np.int64) for start in starts]


def _segments(num_frames: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    _check_length(num_frames, frames)
    edges = (np.arange(frames + 1, dtype=np.int64) * num_frames) // frames
    return edges[:-1], np.diff(edges)  # starts, lengths (all >= 1)


def segment_indices(num_frames: int, frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """One frame from each of T equal segments: uniform in training, the middle without ``rng``."""
    starts, lengths = _segments(num_frames, frames)
    if rng is None:
        return starts + lengths // 2
    return starts + (rng.random(frames) * lengths).astype(np.int64)


def segment_test_indices(num_frames: int, frames: int, clips: int) -> list[np.ndarray]:
    """K segment clips: clip k takes the frame at ``(k + 0.5) / K`` of every segment."""
    starts, lengths = _segments(num_frames, frames)
    return [starts + ((k + 0.5) / clips * lengths).astype(np.int64) for k in range(clips)]


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video, per mode; the data half of a training recipe.

    Flipping is a training-time choice: keep ``flip`` on for Kinetics; for datasets whose
    classes name a direction (Something-Something) turn it off, or keep it on together with
    ``flip_label_map`` (class -> the class a mirrored clip shows, e.g. from
    ``annotations.left_right_swap``) so a mirrored clip carries the swapped label.
    """

    frames: int = 8
    sampler: str = "dense"
    stride: int = 8
    crop: int = 224
    train_short: tuple[int, int] = (256, 320)
    eval_short: int = 256
    test_short: int = 256
    test_clips: int = 10
    test_crops: int = 3
    flip: bool = True
    flip_label_map: Mapping[int, int] | None = None
    seed: int = 0
    min_side: int = 16
    max_aspect: float = 4.0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise UsageError(f"sampler {self.sampler!r}: expected one of {SAMPLERS}")
        if self.frames < 1 or self.stride < 1:
            raise UsageError("frames and stride must be >= 1")
        if self.test_crops not in (1, 3):
            raise UsageError(f"test_crops: {self.test_crops} (expected 1 = centre or 3 = left/centre/right)")
        object.__setattr__(self, "train_short", tuple(self.train_short))
        if self.flip_label_map is not None:
            object.__setattr__(self, "flip_label_map", {int(k): int(v) for k, v in dict(self.flip_label_map).items()})

    def output_size(self, mode: str) -> int:
        """Side of the square clips this mode produces."""
        return self.test_short if mode == "test" and self.test_crops == 3 else self.crop

    def views_per_video(self, mode: str) -> int:
        return self.test_clips * self.test_crops if mode == "test" else 1

    def flipped_label(self, label: int) -> int:
        """The label of a mirrored clip (unchanged for classes absent from the map)."""
        return (self.flip_label_map or {}).get(label, label)


@dataclass(frozen=True)
class View:
    indices: np.ndarray = field(compare=False)
    crop: Crop


def temporal_indices(spec: ClipSpec, num_frames: int, rng: np.random.Generator | None) -> np.ndarray:
    """One clip's frame indices (random with ``rng``, the deterministic centre clip without)."""
    if spec.sampler == "dense":
        return dense_indices(num_frames, spec.frames, spec.stride, rng)
    return segment_indices(num_frames, spec.frames, rng)


def plan_clips(spec: ClipSpec, mode: str, num_frames: int,
               rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """The frame indices of every clip of one video in ``mode`` (known before decoding)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {MODES}")
    if mode == "train":
        if rng is None:
            raise ValueError("training clips need a generator (see clip_rng)")
        return [temporal_indices(spec, num_frames, rng)]
    if mode == "eval":
        return [temporal_indices(spec, num_frames, None)]
    if spec.sampler == "dense":
        return dense_test_indices(num_frames, spec.frames, spec.stride, spec.test_clips)
    return segment_test_indices(num_frames, spec.frames, spec.test_clips)


def plan_crops(spec: ClipSpec, mode: str, height: int, width: int,
               rng: np.random.Generator | None = None) -> list[Crop]:
    """The crops applied to every clip of one video in ``mode`` (known once a frame is decoded)."""
    if mode == "train":
        if rng is None:
            raise ValueError("training crops need a generator (see clip_rng)")
        return [train_crop(height, width, rng, spec.train_short, spec.crop, spec.flip)]
    if mode == "eval":
        return [center_crop(height, width, spec.eval_short, spec.crop)]
    if spec.test_crops == 3:
        return three_crops(height, width, spec.test_short)
    return [center_crop(height, width, spec.test_short, spec.crop)]


def plan_views(spec: ClipSpec, mode: str, num_frames: int, height: int, width: int,
               rng: np.random.Generator | None = None) -> list[View]:
    """Every view of one video: clips x crops (K x 3 in test mode, one otherwise).

    The same generator is drawn from for frames first, then crops, as the decoder does.
    """
    clips = plan_clips(spec, mode, num_frames, rng)
    crops = plan_crops(spec, mode, height, width, rng)
    return [View(indices, crop) for indices in clips for crop in crops]
