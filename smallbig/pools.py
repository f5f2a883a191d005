"""Big-view pools: the "big view" of SmallBig units (paper Eq. 2).

A pool is a maker passed to a unit, like torchvision's conv makers: a centred pool
of any odd size (stride 1, "same" padding, so it keeps the feature map's shape), or
a whole-clip pool that spans every frame, whatever the clip length.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError

POOL_TYPES = ("max", "avg")
_POOL_SIZE = re.compile(r"^(T|\d+)x(\d+)x(\d+)$")


@dataclass(frozen=True)
class PoolSize:
    """A big-view extent T x H x W; ``frames=None`` spans the whole clip (the paper's "T")."""

    frames: int | None
    height: int
    width: int

    @classmethod
    def parse(cls, text: str) -> "PoolSize":
        """Read ``"3x3x3"`` or ``"Tx3x3"`` (T = every frame of the clip)."""
        match = _POOL_SIZE.match(str(text).strip())
        if not match:
            raise ModelError(f"big-view pool {text!r}: expected 'TxHxW' such as '3x3x3' or 'Tx3x3'")
        frames = None if match.group(1) == "T" else int(match.group(1))
        size = cls(frames, int(match.group(2)), int(match.group(3)))
        for extent in (size.frames or 1, size.height, size.width):
            if extent < 1 or extent % 2 == 0:
                raise ModelError(f"big-view pool {text!r}: sizes must be odd so the view is centred")
        return size

    def __str__(self) -> str:
        return f"{'T' if self.frames is None else self.frames}x{self.height}x{self.width}"


class CentredPool(nn.Module):
    """Max (or average) over a t x h x w tube centred on each position, stride 1."""

    def __init__(self, size: tuple[int, int, int], pool_type: str = "max") -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ModelError(f"pool_type {pool_type!r}: expected one of {POOL_TYPES}")
        self.size = tuple(size)
        self.padding = tuple(k // 2 for k in self.size)
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "max":
            if x.device.type == "cpu" and not x.is_contiguous(memory_format=torch.channels_last_3d):
                # PyTorch's CPU max_pool3d is about 10x faster on channels-last tensors,
                # far more than the layout copy costs.
                x = x.contiguous(memory_format=torch.channels_last_3d)
            return F.max_pool3d(x, self.size, stride=1, padding=self.padding)
        # Mean over the positions inside the clip; padding by hand also accepts maps smaller
        # than the window, which avg_pool3d's own padding refuses.
        pad = [p for k in reversed(self.padding) for p in (k, k)]
        inside = F.pad(x.new_ones(1, 1, *x.shape[2:]), pad)
        return F.avg_pool3d(F.pad(x, pad), self.size, stride=1) / F.avg_pool3d(inside, self.size, stride=1)

    def extra_repr(self) -> str:
        return f"size={self.size}, pool_type={self.pool_type}"


class WholeClipPool(nn.Module):
    """Pool over every frame and an h x w window: output has one frame, for any clip length.

    The official code freezes the clip length into the kernel (T x 3 x 3, no temporal
    padding); reducing over the time axis gives the same numbers and accepts any T.
    """

    def __init__(self, height: int, width: int, pool_type: str = "max") -> None:
        super().__init__()
        self.spatial = CentredPool((1, height, width), pool_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spatial.pool_type == "max":
            x = x.amax(dim=2, keepdim=True)
        else:
            x = x.mean(dim=2, keepdim=True)
        return self.spatial(x)

    def extra_repr(self) -> str:
        return f"size=(T, {self.spatial.size[1]}, {self.spatial.size[2]})"


def make_big_view_pool(size: str | PoolSize, pool_type: str = "max") -> nn.Module:
    """Build the pool for a big view such as ``"3x3x3"`` or ``"Tx3x3"``."""
    size = size if isinstance(size, PoolSize) else PoolSize.parse(size)
    if size.frames is None:
        return WholeClipPool(size.height, size.width, pool_type)
    return CentredPool((size.frames, size.height, size.width), pool_type)
